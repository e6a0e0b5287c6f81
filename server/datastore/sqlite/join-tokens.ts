import { createHash } from 'node:crypto'
import type Database from 'better-sqlite3'
import type { Clock } from '../../../lib/core/clock.js'
import { IdentityError } from '../../../lib/core/errors.js'
import { SpiffeId } from '../../../lib/core/spiffe-id.js'
import type { CommitHooks, JoinToken, JoinTokenStore } from '../ports.js'
import { guard, isPrimaryKeyViolation, readRow } from './guard.js'
import { hookedTransaction } from './hooked-transaction.js'

interface TokenRow {
  readonly expires_at_ms: number
  readonly alias_id: string | null
}

/** Longest join token accepted, in UTF-16 units. */
const MAX_TOKEN_LENGTH = 1024

function digest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex')
}

function invalid(message: string, cause?: unknown): IdentityError {
  return new IdentityError('ERR_JOIN_TOKEN_INVALID', message, { cause })
}

/** The {@link JoinTokenStore} on SQLite; rows are keyed by the token's SHA-256 digest. */
export class SqliteJoinTokenStore implements JoinTokenStore {
  readonly #clock: Clock
  readonly #insert: (
    hooks: CommitHooks<void> | undefined,
    ...row: [string, number, string | null, number]
  ) => void
  readonly #take: Database.Statement<[string], TokenRow>
  readonly #prune: Database.Statement<[number]>

  constructor(db: Database.Database, clock: Clock) {
    this.#clock = clock
    const insert = db.prepare<[string, number, string | null, number]>(
      'INSERT INTO join_tokens (token_sha256, expires_at_ms, alias_id, created_at_ms) VALUES (?, ?, ?, ?)',
    )
    this.#insert = hookedTransaction(db, (...row: [string, number, string | null, number]) => {
      insert.run(...row)
    })
    this.#take = db.prepare(
      'DELETE FROM join_tokens WHERE token_sha256 = ? RETURNING expires_at_ms, alias_id',
    )
    this.#prune = db.prepare('DELETE FROM join_tokens WHERE expires_at_ms <= ?')
  }

  async create(token: JoinToken, hooks?: CommitHooks<void>): Promise<void> {
    if (
      typeof token.token !== 'string' ||
      token.token.length === 0 ||
      token.token.length > MAX_TOKEN_LENGTH
    ) {
      throw invalid(`a join token must be 1 to ${MAX_TOKEN_LENGTH} characters`)
    }
    if (!Number.isSafeInteger(token.expiresAtMs)) throw invalid('a join token needs an expiry time')
    const alias = token.aliasId?.toString() ?? null
    guard('create a join token', () => {
      try {
        this.#insert(hooks, digest(token.token), token.expiresAtMs, alias, this.#clock.nowMs())
      } catch (err) {
        throw isPrimaryKeyViolation(err) ? invalid('this join token already exists', err) : err
      }
    })
  }

  async consume(token: string, nowMs: number): Promise<JoinToken | undefined> {
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) return undefined
    // One DELETE … RETURNING: of two concurrent consumers, only one gets the row.
    const row = guard('consume a join token', () => this.#take.get(digest(token)))
    if (row === undefined || row.expires_at_ms <= nowMs) return undefined
    const aliasId = readRow('join token', () =>
      row.alias_id === null ? undefined : SpiffeId.parse(row.alias_id),
    )
    return Object.freeze({ token, expiresAtMs: row.expires_at_ms, aliasId })
  }

  async prune(nowMs: number): Promise<number> {
    return guard('prune join tokens', () => this.#prune.run(nowMs).changes)
  }
}
