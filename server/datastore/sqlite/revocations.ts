import type Database from 'better-sqlite3'
import { IdentityError } from '../../../lib/core/errors.js'
import { REVOCATION_KINDS, type RevocationKind } from '../../../lib/core/revocation.js'
import type { CommitHooks, RevocationStore, StoredRevocation } from '../ports.js'
import { guard, readRow } from './guard.js'
import { hookedTransaction } from './hooked-transaction.js'

interface RevocationRow {
  readonly kind: string
  readonly value: string
  readonly issued_before_ms: number
  readonly revoked_at_ms: number
  readonly keep_until_ms: number
  readonly reason: string
  readonly revoked_by: string
}

function fromRow(row: RevocationRow): StoredRevocation {
  return readRow('revocation', () => {
    if (!REVOCATION_KINDS.includes(row.kind as RevocationKind)) throw new Error(`unknown kind ${row.kind}`)
    return Object.freeze({
      kind: row.kind as RevocationKind,
      value: row.value,
      issuedBeforeMs: row.issued_before_ms,
      revokedAtMs: row.revoked_at_ms,
      keepUntilMs: row.keep_until_ms,
      reason: row.reason,
      revokedBy: row.revoked_by,
    })
  })
}

/** The {@link RevocationStore} on SQLite. */
export class SqliteRevocationStore implements RevocationStore {
  readonly #create: (
    hooks: CommitHooks<StoredRevocation> | undefined,
    r: StoredRevocation,
    limit: number,
  ) => StoredRevocation
  readonly #list: Database.Statement<[number], RevocationRow>
  readonly #prune: Database.Statement<[number]>

  constructor(db: Database.Database) {
    const count = db.prepare<[number]>('SELECT count(*) FROM revocations WHERE keep_until_ms > ?').pluck()
    const fetch = db.prepare<[string, string], RevocationRow>(
      'SELECT * FROM revocations WHERE kind = ? AND value = ?',
    )
    const upsert = db.prepare(
      `INSERT INTO revocations (kind, value, issued_before_ms, revoked_at_ms, keep_until_ms, reason, revoked_by)
       VALUES (@kind, @value, @issuedBeforeMs, @revokedAtMs, @keepUntilMs, @reason, @revokedBy)
       ON CONFLICT (kind, value) DO UPDATE SET
         issued_before_ms = max(issued_before_ms, excluded.issued_before_ms),
         keep_until_ms = max(keep_until_ms, excluded.keep_until_ms),
         revoked_at_ms = excluded.revoked_at_ms,
         reason = excluded.reason,
         revoked_by = excluded.revoked_by`,
    )
    this.#create = hookedTransaction(db, (r: StoredRevocation, limit: number) => {
      const existing = fetch.get(r.kind, r.value)
      if (existing === undefined && (count.get(r.revokedAtMs) as number) >= limit)
        throw new IdentityError(
          'ERR_REVOCATION_LIMIT',
          `${limit} revocations are kept already; they are pruned as what they revoke expires`,
        )
      upsert.run(r)
      return fromRow(fetch.get(r.kind, r.value) as RevocationRow)
    })
    this.#list = db.prepare('SELECT * FROM revocations WHERE keep_until_ms > ? ORDER BY kind, value')
    this.#prune = db.prepare('DELETE FROM revocations WHERE keep_until_ms <= ?')
  }

  async create(
    revocation: StoredRevocation,
    options: { readonly limit: number; readonly hooks?: CommitHooks<StoredRevocation> },
  ): Promise<StoredRevocation> {
    const row = {
      kind: revocation.kind,
      value: revocation.value,
      issuedBeforeMs: revocation.issuedBeforeMs,
      revokedAtMs: revocation.revokedAtMs,
      keepUntilMs: revocation.keepUntilMs,
      reason: revocation.reason,
      revokedBy: revocation.revokedBy,
    }
    return guard('store a revocation', () => this.#create(options.hooks, row, options.limit))
  }

  async list(nowMs: number): Promise<ReadonlyArray<StoredRevocation>> {
    return guard('list revocations', () => this.#list.all(nowMs)).map(fromRow)
  }

  async prune(nowMs: number): Promise<number> {
    return guard('prune revocations', () => this.#prune.run(nowMs).changes)
  }
}
