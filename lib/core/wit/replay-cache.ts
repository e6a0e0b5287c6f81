import { IdentityError } from '../errors.js'

/** Default bound of a {@link ReplayCache}: 100 000 proofs (a few MB). */
export const DEFAULT_REPLAY_CACHE_CAPACITY = 100_000

/**
 * The `jti`s of the Workload Proof Tokens already accepted, each kept until its token expires, in a
 * bounded amount of memory. When it is full of unexpired entries it refuses new proofs rather than
 * forget one that could still be replayed.
 */
export class ReplayCache {
  readonly #capacity: number
  readonly #seen = new Map<string, number>()

  constructor(opts: { readonly capacity?: number } = {}) {
    const capacity = opts.capacity ?? DEFAULT_REPLAY_CACHE_CAPACITY
    if (!Number.isSafeInteger(capacity) || capacity < 1)
      throw new IdentityError('ERR_CONFIG_INVALID', 'the replay cache capacity must be a whole number >= 1')
    this.#capacity = capacity
  }

  /** How many proofs are remembered now. */
  get size(): number {
    return this.#seen.size
  }

  /**
   * Records `key` until `expiresAtMs`; false when it was already recorded and has not expired (a replay).
   * @throws ERR_THROTTLED when the cache is full of unexpired proofs
   */
  admit(key: string, expiresAtMs: number, nowMs: number): boolean {
    const until = this.#seen.get(key)
    if (until !== undefined && until > nowMs) return false
    if (this.#seen.size >= this.#capacity) this.#prune(nowMs)
    if (this.#seen.size >= this.#capacity)
      throw new IdentityError('ERR_THROTTLED', 'too many unexpired proofs to remember: try again shortly')
    this.#seen.delete(key)
    this.#seen.set(key, expiresAtMs)
    return true
  }

  #prune(nowMs: number): void {
    for (const [key, until] of this.#seen) if (until <= nowMs) this.#seen.delete(key)
  }
}
