/** What {@link ThrottledAudit.admit} says about one throttled refusal. */
export type ThrottledRecord =
  | { readonly isRecorded: false }
  /** Record it; `unrecorded` refusals of this key's previous block were counted, not recorded. */
  | { readonly isRecorded: true; readonly unrecorded: number }

interface KeyState {
  blockedUntilMs: number
  unrecorded: number
}

/**
 * Keeps throttled refusals from flooding the audit (DESIGN §10: repeated refusals are summarised):
 * the first refusal of each block of a key is recorded, the others of that block only counted, and
 * the count goes into the record of the key's next block. Bounded: at most `maxKeys` keys, the
 * least recently seen forgotten first.
 * @example
 * const gate = new ThrottledAudit()
 * const verdict = gate.admit('uid:1000', blockedUntilMs)
 * if (verdict.isRecorded) audit.callDenied({ ..., reason: `throttled (${verdict.unrecorded} more before)` })
 */
export class ThrottledAudit {
  readonly #keys = new Map<string, KeyState>()
  readonly #maxKeys: number

  constructor(options: { maxKeys?: number } = {}) {
    this.#maxKeys = Math.max(1, options.maxKeys ?? 10_000)
  }

  /** Whether to record a refusal of `key` during the block that ends at `blockedUntilMs`. */
  admit(key: string, blockedUntilMs: number): ThrottledRecord {
    const state = this.#keys.get(key)
    if (state !== undefined && state.blockedUntilMs === blockedUntilMs) {
      state.unrecorded += 1
      return { isRecorded: false }
    }
    const unrecorded = state?.unrecorded ?? 0
    this.#keys.delete(key)
    this.#keys.set(key, { blockedUntilMs, unrecorded: 0 })
    if (this.#keys.size > this.#maxKeys) {
      const oldest = this.#keys.keys().next().value
      if (oldest !== undefined) this.#keys.delete(oldest)
    }
    return { isRecorded: true, unrecorded }
  }
}
