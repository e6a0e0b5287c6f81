import type Database from 'better-sqlite3'
import { IdentityError } from '../../../../lib/core/errors.js'
import { initialSchema } from './001-initial.js'
import { pendingRequestsSchema } from './002-pending-requests.js'
import { reConsentSchema } from './003-re-consent.js'
import { auditCheckpointsSchema } from './004-audit-checkpoints.js'
import { revocationsSchema } from './005-revocations.js'
import { taskApprovalsSchema } from './006-task-approvals.js'
import { tasksSchema } from './007-tasks.js'

/** One schema change; `version` counts from 1 without gaps. */
interface Migration {
  readonly version: number
  readonly sql: string
}

const MIGRATIONS: ReadonlyArray<Migration> = [
  { version: 1, sql: initialSchema },
  { version: 2, sql: pendingRequestsSchema },
  { version: 3, sql: reConsentSchema },
  { version: 4, sql: auditCheckpointsSchema },
  { version: 5, sql: revocationsSchema },
  { version: 6, sql: taskApprovalsSchema },
  { version: 7, sql: tasksSchema },
]

/** The schema version this code writes and understands. */
export const SCHEMA_VERSION = MIGRATIONS.length

const VERSION_TABLE = `CREATE TABLE IF NOT EXISTS schema_version (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  version INTEGER NOT NULL
)`

function readVersion(db: Database.Database): number {
  const value = db.prepare('SELECT version FROM schema_version WHERE id = 1').pluck().get()
  if (value === undefined) return 0
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new IdentityError('ERR_DATASTORE_SCHEMA', 'the schema_version row is malformed')
  }
  return value
}

/**
 * Brings the schema up to {@link SCHEMA_VERSION} in one immediate transaction and returns the version
 * found before. A database written by newer code is refused and left untouched.
 * @throws ERR_DATASTORE_SCHEMA when the database is newer than this code or its version row is malformed
 */
export function migrate(db: Database.Database): number {
  const run = db.transaction((): number => {
    db.exec(VERSION_TABLE)
    const found = readVersion(db)
    if (found > SCHEMA_VERSION) {
      throw new IdentityError(
        'ERR_DATASTORE_SCHEMA',
        `the database has schema version ${found}, newer than this server's ${SCHEMA_VERSION}; upgrade the server`,
      )
    }
    for (const m of MIGRATIONS) if (m.version > found) db.exec(m.sql)
    db.prepare(
      'INSERT INTO schema_version (id, version) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version',
    ).run(SCHEMA_VERSION)
    return found
  })
  return run.immediate()
}
