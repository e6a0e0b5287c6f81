import type { JwtBundleSource } from '../bundle/bundle-source.js'
import type { JwtBundle } from '../bundle/jwt-bundle.js'
import type { JwtSvid } from './jwt-svid.js'
import {
  checkJwtSvidClaims,
  currentJwtBundle,
  type ValidateJwtSvidOptions,
  verifyJwtSvidSignature,
} from './jwt-svid-validate.js'

/** How many tokens a {@link ValidatedJwtSvidCache} keeps unless told otherwise. */
export const DEFAULT_JWT_SVID_CACHE_SIZE = 1024

interface Entry {
  readonly svid: JwtSvid
  /** The bundle the signature verified against: a hit needs the source's current bundle to be this one. */
  readonly bundle: JwtBundle
}

/**
 * JWT-SVIDs whose signature verified, by the exact token, so that a caller sending the same bearer
 * token on every request costs one decode and one signature check per token instead of per request.
 * A hit is used only while the source's current JWT bundle of the token's trust domain is the very
 * bundle object it verified against (any bundle update, a rotation above all, sends the token back
 * through the full check); the checks that depend on the time or on the revocations (audience,
 * `nbf`/`exp`/`iat` against `nowMs`, revocation) run on every call, hit or not, with the same errors
 * as {@link validateJwtSvid}. A token that fails them is dropped. Bounded: the oldest token goes first.
 * @example
 * const cache = new ValidatedJwtSvidCache()
 * const svid = await cache.validate(token, bundles, 'my-tool', { nowMs: clock.nowMs(), revocations })
 */
export class ValidatedJwtSvidCache {
  readonly #maxEntries: number
  readonly #entries = new Map<string, Entry>()
  #hits = 0
  #misses = 0

  /** @throws RangeError when `maxEntries` is not a positive integer */
  constructor(maxEntries = DEFAULT_JWT_SVID_CACHE_SIZE) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1)
      throw new RangeError('maxEntries must be a positive integer')
    this.#maxEntries = maxEntries
  }

  /** Calls answered without a signature check, calls that checked one, and how many tokens are kept. */
  get stats(): { readonly hits: number; readonly misses: number; readonly size: number } {
    return { hits: this.#hits, misses: this.#misses, size: this.#entries.size }
  }

  /** Like {@link validateJwtSvid}; the signature is checked once per token and bundle. */
  async validate(
    token: string,
    bundles: JwtBundleSource,
    expectedAudience: string | ReadonlyArray<string>,
    opts: ValidateJwtSvidOptions,
  ): Promise<JwtSvid> {
    const hit = this.#entries.get(token)
    if (hit !== undefined && currentJwtBundle(bundles, hit.svid.id.trustDomain) === hit.bundle) {
      this.#check(token, hit.svid, expectedAudience, opts)
      this.#hits++
      return hit.svid
    }
    if (hit !== undefined) this.#entries.delete(token)
    this.#misses++
    const entry = await verifyJwtSvidSignature(token, bundles)
    this.#check(token, entry.svid, expectedAudience, opts)
    if (this.#entries.size >= this.#maxEntries)
      this.#entries.delete(this.#entries.keys().next().value as string)
    this.#entries.set(token, entry)
    return entry.svid
  }

  #check(
    token: string,
    svid: JwtSvid,
    expectedAudience: string | ReadonlyArray<string>,
    opts: ValidateJwtSvidOptions,
  ): void {
    try {
      checkJwtSvidClaims(svid, expectedAudience, opts)
    } catch (err) {
      this.#entries.delete(token)
      throw err
    }
  }
}
