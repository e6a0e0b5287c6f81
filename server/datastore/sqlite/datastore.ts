import type Database from 'better-sqlite3'
import { type Clock, systemClock } from '../../../lib/core/clock.js'
import type { TrustDomain } from '../../../lib/core/trust-domain.js'
import type { Datastore } from '../ports.js'
import { SqliteCheckpointStore } from './audit-checkpoints.js'
import { SqliteBundleStore } from './bundles.js'
import { SqliteEntryStore } from './entries.js'
import { checkIntegrity, inspectDatastoreFile } from './file-check.js'
import { guard } from './guard.js'
import { SqliteJoinTokenStore } from './join-tokens.js'
import { SqliteKeyJournalStore } from './key-journal.js'
import { migrate } from './migrations/migrate.js'
import { SqliteAgentStore } from './nodes.js'
import { openDatabase } from './open.js'
import { SqlitePendingRequestStore } from './pending-requests.js'
import { SqliteRevocationStore } from './revocations.js'
import { SqliteTaskStore } from './tasks.js'

/** Options of {@link openSqliteDatastore}. */
export interface SqliteDatastoreOptions {
  /** The database file (created with mode 0600, its directory 0700, when missing). */
  readonly path: string
  /** The server's trust domain: entries must belong to it. */
  readonly trustDomain: TrustDomain
  /** Stamps creation and update times; the system clock by default. */
  readonly clock?: Clock
  /** How long to wait for another connection's lock; 5 s by default. */
  readonly busyTimeoutMs?: number
}

/** Every store over one SQLite connection. Obtain with {@link openSqliteDatastore}. */
export class SqliteDatastore implements Datastore {
  readonly entries: SqliteEntryStore
  readonly joinTokens: SqliteJoinTokenStore
  readonly agents: SqliteAgentStore
  readonly bundles: SqliteBundleStore
  readonly keyJournal: SqliteKeyJournalStore
  readonly pendingRequests: SqlitePendingRequestStore
  readonly checkpoints: SqliteCheckpointStore
  readonly revocations: SqliteRevocationStore
  readonly tasks: SqliteTaskStore
  /** True when the file did not exist before this open: a fresh install (see {@link openSqliteDatastore}). */
  readonly isNew: boolean
  readonly #db: Database.Database

  private constructor(
    db: Database.Database,
    trustDomain: TrustDomain,
    options: { clock: Clock; isNew: boolean },
  ) {
    const { clock } = options
    this.isNew = options.isNew
    this.#db = db
    this.entries = new SqliteEntryStore(db, { trustDomain, clock })
    this.joinTokens = new SqliteJoinTokenStore(db, clock)
    this.agents = new SqliteAgentStore(db, clock)
    this.bundles = new SqliteBundleStore(db, clock)
    this.keyJournal = new SqliteKeyJournalStore(db, clock)
    this.pendingRequests = new SqlitePendingRequestStore(db)
    this.checkpoints = new SqliteCheckpointStore(db)
    this.revocations = new SqliteRevocationStore(db)
    this.tasks = new SqliteTaskStore(db)
  }

  /** @internal Use {@link openSqliteDatastore}. */
  static fromDatabase(
    db: Database.Database,
    trustDomain: TrustDomain,
    options: { clock: Clock; isNew?: boolean },
  ): SqliteDatastore {
    return new SqliteDatastore(db, trustDomain, { clock: options.clock, isNew: options.isNew ?? false })
  }

  async close(): Promise<void> {
    if (this.#db.open) guard('close the database', () => this.#db.close())
  }
}

/**
 * Opens the datastore file, brings its schema up to date and prepares every store. Only a missing
 * file is a fresh install (`isNew`): a file that is there must be a sound SQLite database, checked
 * before SQLite opens it (an empty or foreign file) and after (`PRAGMA quick_check`), so a damaged
 * datastore is refused rather than silently started over.
 * @throws ERR_DATASTORE_CORRUPT when the file is empty, cut short, not SQLite, or fails its check
 * @throws ERR_DATASTORE_IO when the file cannot be opened or set up
 * @throws ERR_DATASTORE_SCHEMA when the database was written by a newer version
 */
export async function openSqliteDatastore(options: SqliteDatastoreOptions): Promise<SqliteDatastore> {
  const isNew = inspectDatastoreFile(options.path)
  const db = openDatabase({
    path: options.path,
    ...(options.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: options.busyTimeoutMs }),
  })
  try {
    if (!isNew) guard('check its integrity', () => checkIntegrity(db, options.path))
    guard('migrate the schema', () => migrate(db))
    const clock = options.clock ?? systemClock
    return guard('prepare the stores', () =>
      SqliteDatastore.fromDatabase(db, options.trustDomain, { clock, isNew }),
    )
  } catch (err) {
    db.close()
    throw err
  }
}
