import type { Clock } from '../../lib/core/clock.js'

/** Options of {@link RefusalThrottle}; each has a default. */
export interface RefusalThrottleOptions {
  /** Refusals a key may get in one burst; default 20. */
  readonly burst?: number
  /** Refusals a key regains per second; default 2. */
  readonly perSecond?: number
  /** Keys remembered at most, least recently refused forgotten first; default 10 000. */
  readonly maxKeys?: number
}

interface Bucket {
  tokens: number
  lastMs: number
}

/**
 * Token buckets of refusals (DESIGN §10 "Throttling"), one per key (`uid:<n>`, `exe:<sha256>`): each
 * refusal takes a token from every key it concerns; when one of them is empty the refusal becomes
 * ERR_THROTTLED instead, with the time until a token is back. Grants take nothing. Time comes from the
 * injected clock; memory is bounded by `maxKeys`.
 */
export class RefusalThrottle {
  readonly #buckets = new Map<string, Bucket>()
  readonly #burst: number
  readonly #perMs: number
  readonly #maxKeys: number
  readonly #clock: Clock

  constructor(clock: Clock, options: RefusalThrottleOptions = {}) {
    this.#clock = clock
    this.#burst = Math.max(1, options.burst ?? 20)
    this.#perMs = Math.max(1e-6, (options.perSecond ?? 2) / 1000)
    this.#maxKeys = Math.max(1, options.maxKeys ?? 10_000)
  }

  /**
   * Takes one token from the bucket of each key. Returns undefined when every bucket had one, or
   * the milliseconds until all of them will have one again (and takes nothing).
   */
  take(keys: ReadonlyArray<string>): number | undefined {
    const nowMs = this.#clock.nowMs()
    const buckets = keys.map((k) => this.#refilled(k, nowMs))
    let waitMs = 0
    for (const b of buckets) if (b.tokens < 1) waitMs = Math.max(waitMs, (1 - b.tokens) / this.#perMs)
    if (waitMs > 0) return Math.ceil(waitMs)
    for (const b of buckets) b.tokens -= 1
    return undefined
  }

  #refilled(key: string, nowMs: number): Bucket {
    let bucket = this.#buckets.get(key)
    if (bucket === undefined) {
      bucket = { tokens: this.#burst, lastMs: nowMs }
      if (this.#buckets.size >= this.#maxKeys) {
        const oldest = this.#buckets.keys().next().value
        if (oldest !== undefined) this.#buckets.delete(oldest)
      }
    } else {
      this.#buckets.delete(key)
      const elapsed = Math.max(0, nowMs - bucket.lastMs)
      bucket.tokens = Math.min(this.#burst, bucket.tokens + elapsed * this.#perMs)
      bucket.lastMs = nowMs
    }
    this.#buckets.set(key, bucket)
    return bucket
  }
}
