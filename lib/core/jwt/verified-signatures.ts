import type { KeyObject } from 'node:crypto'

/** How many tokens a {@link VerifiedSignatures} keeps unless told otherwise. */
export const DEFAULT_VERIFIED_SIGNATURES_SIZE = 1024

/**
 * Tokens whose signature verified, each with the key that verified it, so that a token sent again
 * is not verified again while its `kid` still names that very key in the current bundle (a rotation
 * that drops or replaces the key sends it back through the signature check). Only the signature is
 * remembered: every claim, the time and the revocations are checked on every use by the caller.
 * Bounded: the oldest token goes first.
 * @example
 * if (!signatures.has(token, authority.key)) { await verify(token, authority.key); signatures.add(token, authority.key) }
 */
export class VerifiedSignatures {
  readonly #maxEntries: number
  readonly #byToken = new Map<string, KeyObject>()

  /** @throws RangeError when `maxEntries` is not a positive integer */
  constructor(maxEntries = DEFAULT_VERIFIED_SIGNATURES_SIZE) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1)
      throw new RangeError('maxEntries must be a positive integer')
    this.#maxEntries = maxEntries
  }

  /** True when `token`'s signature verified with exactly `key`. */
  has(token: string, key: KeyObject): boolean {
    return this.#byToken.get(token) === key
  }

  /** Remembers that `token`'s signature verified with `key`. */
  add(token: string, key: KeyObject): void {
    this.#byToken.delete(token)
    if (this.#byToken.size >= this.#maxEntries)
      this.#byToken.delete(this.#byToken.keys().next().value as string)
    this.#byToken.set(token, key)
  }

  /** How many tokens are kept. */
  get size(): number {
    return this.#byToken.size
  }
}
