import type Database from 'better-sqlite3'
import { MAX_SPIFFE_SEQUENCE } from '../../../lib/core/bundle/spiffe-bundle.js'
import type { Clock } from '../../../lib/core/clock.js'
import { IdentityError } from '../../../lib/core/errors.js'
import { TrustDomain } from '../../../lib/core/trust-domain.js'
import type { BundleStore, CommitHooks, StoredBundle } from '../ports.js'
import { guard, readRow } from './guard.js'
import { hookedTransaction } from './hooked-transaction.js'

interface BundleRow {
  readonly trust_domain: string
  readonly document: string
  /** Decimal: a sequence may exceed SQLite's signed 64-bit integers. */
  readonly sequence: string
  readonly updated_at_ms: number
}

function rowToBundle(row: BundleRow): StoredBundle {
  return readRow(`bundle of ${row.trust_domain}`, () =>
    Object.freeze({
      trustDomain: TrustDomain.fromValidated(row.trust_domain),
      document: row.document,
      sequence: BigInt(row.sequence),
      updatedAtMs: row.updated_at_ms,
    }),
  )
}

/** The {@link BundleStore} on SQLite: one row per trust domain. */
export class SqliteBundleStore implements BundleStore {
  readonly #clock: Clock
  readonly #upsert: Database.Statement<[string, string, string, number]>
  readonly #fetch: Database.Statement<[string], BundleRow>
  readonly #list: Database.Statement<[], BundleRow>
  readonly #delete: Database.Statement<[string]>
  readonly #hookedUpsert: (
    hooks: CommitHooks<void> | undefined,
    ...row: [string, string, string, number]
  ) => void
  readonly #hookedDelete: (hooks: CommitHooks<void> | undefined, trustDomain: TrustDomain) => void

  constructor(db: Database.Database, clock: Clock) {
    this.#clock = clock
    this.#upsert = db.prepare(
      `INSERT INTO bundles (trust_domain, document, sequence, updated_at_ms) VALUES (?, ?, ?, ?)
        ON CONFLICT (trust_domain) DO UPDATE SET document = excluded.document, sequence = excluded.sequence,
          updated_at_ms = excluded.updated_at_ms`,
    )
    const columns = 'trust_domain, document, sequence, updated_at_ms'
    this.#fetch = db.prepare(`SELECT ${columns} FROM bundles WHERE trust_domain = ?`)
    this.#list = db.prepare(`SELECT ${columns} FROM bundles ORDER BY trust_domain`)
    this.#delete = db.prepare('DELETE FROM bundles WHERE trust_domain = ?')
    this.#hookedUpsert = hookedTransaction(db, (...row: [string, string, string, number]) => {
      this.#upsert.run(...row)
    })
    this.#hookedDelete = hookedTransaction(db, (trustDomain: TrustDomain) => {
      if (this.#delete.run(trustDomain.name).changes === 0)
        throw new IdentityError('ERR_BUNDLE_NOT_FOUND', `no bundle for ${trustDomain.name}`)
    })
  }

  async set(
    trustDomain: TrustDomain,
    document: string,
    sequence: bigint,
    hooks?: CommitHooks<void>,
  ): Promise<StoredBundle> {
    if (typeof sequence !== 'bigint' || sequence < 0n || sequence > MAX_SPIFFE_SEQUENCE) {
      throw new IdentityError('ERR_BUNDLE_MALFORMED', 'spiffe_sequence must be an integer from 0 to 2^64 - 1')
    }
    if (typeof document !== 'string')
      throw new IdentityError('ERR_BUNDLE_MALFORMED', 'a bundle must be a string')
    const updatedAtMs = this.#clock.nowMs()
    guard('store a bundle', () =>
      this.#hookedUpsert(hooks, trustDomain.name, document, sequence.toString(), updatedAtMs),
    )
    return Object.freeze({ trustDomain, document, sequence, updatedAtMs })
  }

  async fetch(trustDomain: TrustDomain): Promise<StoredBundle | undefined> {
    const row = guard('fetch a bundle', () => this.#fetch.get(trustDomain.name))
    return row === undefined ? undefined : rowToBundle(row)
  }

  async list(): Promise<ReadonlyArray<StoredBundle>> {
    return guard('list bundles', () => this.#list.all().map(rowToBundle))
  }

  async delete(trustDomain: TrustDomain, hooks?: CommitHooks<void>): Promise<void> {
    guard('delete a bundle', () => this.#hookedDelete(hooks, trustDomain))
  }
}
