import { IdentityError } from './errors.js'
import {
  findIdProblem,
  findPathProblem,
  findPathStart,
  MAX_ID_BYTES,
  SCHEME_PREFIX,
} from './spiffe-id-rules.js'
import { TrustDomain } from './trust-domain.js'

/** `/a/b` from `['a', 'b']`; each segment's own characters are checked later, with the path. */
function joinSegments(segments: readonly string[]): string {
  let path = ''
  for (const s of segments) {
    if (s.includes('/')) throw new IdentityError('ERR_ID_INVALID', 'path segment cannot contain a slash')
    path += `/${s}`
  }
  return path
}

/**
 * A SPIFFE ID, `spiffe://<trust domain>[/<path>]`, validated by every rule of the SPIFFE ID
 * standard (spec §1) and capped at 2048 bytes. Immutable; compare with {@link SpiffeId.equals}.
 *
 * Parsing is on the request path, so it keeps the input string as is and creates the
 * {@link TrustDomain} only when it is asked for.
 */
export class SpiffeId {
  readonly #uri: string
  /** Index in `#uri` where the path starts (`#uri.length` for a root ID). */
  readonly #pathStart: number
  /** Created on first use; never changes once set. */
  #trustDomain: TrustDomain | undefined

  private constructor(uri: string, pathStart: number, trustDomain?: TrustDomain) {
    this.#uri = uri
    this.#pathStart = pathStart
    this.#trustDomain = trustDomain
  }

  /**
   * Parses `spiffe://td/path`. The scheme must be the lowercase literal, as go-spiffe requires.
   * @throws ERR_ID_INVALID
   */
  static parse(input: string): SpiffeId {
    if (typeof input !== 'string') throw new IdentityError('ERR_ID_INVALID', 'SPIFFE ID must be a string')
    const problem = findIdProblem(input)
    if (problem !== undefined) throw new IdentityError('ERR_ID_INVALID', problem)
    return new SpiffeId(input, findPathStart(input))
  }

  /**
   * Builds an ID from a trust domain and a path (`''` or `/a/b`).
   * @throws ERR_ID_INVALID
   */
  static fromPath(trustDomain: TrustDomain, path: string): SpiffeId {
    const problem = findPathProblem(path)
    if (problem !== undefined) throw new IdentityError('ERR_ID_INVALID', problem)
    const uri = SCHEME_PREFIX + trustDomain.name + path
    if (uri.length > MAX_ID_BYTES) {
      throw new IdentityError('ERR_ID_INVALID', `SPIFFE ID is longer than ${MAX_ID_BYTES} bytes`)
    }
    return new SpiffeId(uri, uri.length - path.length, trustDomain)
  }

  /**
   * Builds an ID from path segments, each a single segment without slashes.
   * @throws ERR_ID_INVALID
   */
  static fromSegments(trustDomain: TrustDomain, ...segments: string[]): SpiffeId {
    return SpiffeId.fromPath(trustDomain, joinSegments(segments))
  }

  /**
   * Parses an ID known to be valid: for literals and tests only. Same checks as {@link SpiffeId.parse}.
   * @throws ERR_ID_INVALID
   */
  static mustParse(input: string): SpiffeId {
    return SpiffeId.parse(input)
  }

  /** The trust domain the ID belongs to. */
  get trustDomain(): TrustDomain {
    this.#trustDomain ??= TrustDomain.fromValidated(this.#uri.slice(SCHEME_PREFIX.length, this.#pathStart))
    return this.#trustDomain
  }

  /** The path, `''` for the trust domain's own ID, otherwise starting with `/`. */
  get path(): string {
    return this.#uri.slice(this.#pathStart)
  }

  /** True for `spiffe://td` (no path): a trust domain's ID, never a leaf SVID's. */
  get isRoot(): boolean {
    return this.#pathStart === this.#uri.length
  }

  /** True when this ID belongs to `trustDomain`. Allocates nothing. */
  memberOf(trustDomain: TrustDomain): boolean {
    const name = trustDomain.name
    return (
      this.#pathStart - SCHEME_PREFIX.length === name.length &&
      this.#uri.startsWith(name, SCHEME_PREFIX.length)
    )
  }

  /** The path segments (`[]` for a root ID). */
  segments(): string[] {
    return this.isRoot ? [] : this.#uri.slice(this.#pathStart + 1).split('/')
  }

  /** A new ID in the same trust domain with `segments` appended to the path. @throws ERR_ID_INVALID */
  append(...segments: string[]): SpiffeId {
    return SpiffeId.fromPath(this.trustDomain, this.path + joinSegments(segments))
  }

  /** Why this ID must not be issued in a certificate, or undefined (spec §1, row 24). */
  issuanceProblem(): string | undefined {
    return this.trustDomain.issuanceProblem()
  }

  /** True when both are the same ID (byte for byte: paths are case-sensitive). */
  equals(other: SpiffeId): boolean {
    return this.#uri === other.#uri
  }

  /** The URI form, `spiffe://td/path`. */
  toString(): string {
    return this.#uri
  }

  /** The URI form, so an ID serializes as a plain JSON string. */
  toJSON(): string {
    return this.#uri
  }
}
