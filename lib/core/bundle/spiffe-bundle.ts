import { IdentityError } from '../errors.js'
import type { TrustDomain } from '../trust-domain.js'
import type { Certificate } from '../x509/certificate.js'
import { type IgnoredBundleKey, readBundleKeys } from './bundle-keys.js'
import { documentText, isJsonObject, listMembers, parseJsonDocument } from './json-document.js'
import { exportPublicJwk } from './jwk.js'
import { assertUniqueKids, type JwtAuthority, JwtBundle } from './jwt-bundle.js'
import { X509Bundle } from './x509-bundle.js'

/** The largest `spiffe_sequence`: an unsigned 64-bit integer, as go-spiffe reads it. */
export const MAX_SPIFFE_SEQUENCE = 2n ** 64n - 1n

/** The parts of a {@link SpiffeBundle}; bundles given must belong to its trust domain. */
export interface SpiffeBundleParts {
  readonly x509?: X509Bundle
  readonly jwt?: JwtBundle
  /** The WIT-SVID authorities (keys with `use: wit-svid`), kept apart from the JWT-SVID ones. */
  readonly wit?: JwtBundle
  /** `spiffe_sequence`, 0 to 2^64 − 1. */
  readonly sequence?: bigint
  /** `spiffe_refresh_hint`, whole seconds ≥ 0. */
  readonly refreshHintSeconds?: number
}

/**
 * A parsed bundle document and the key elements that were ignored (see {@link SpiffeBundle.parseDetailed}).
 * @example
 * const result: SpiffeBundleParseResult = SpiffeBundle.parseDetailed(td, text)
 * result.bundle.jwtAuthorities.length
 */
export interface SpiffeBundleParseResult {
  readonly bundle: SpiffeBundle
  /** The key elements not taken as authorities, in document order; empty when every key was usable. */
  readonly ignoredKeys: ReadonlyArray<IgnoredBundleKey>
}

export type { IgnoredBundleKey } from './bundle-keys.js'

/**
 * A SPIFFE bundle (spec §6.1): the X.509 and JWT authorities of one trust domain, with the
 * optional sequence number and refresh hint. Immutable. Converts to and from the JWK Set document
 * that the federation endpoint serves.
 */
export class SpiffeBundle {
  readonly #x509: X509Bundle
  readonly #jwt: JwtBundle
  readonly #wit: JwtBundle
  readonly #sequence: bigint | undefined
  readonly #refreshHintSeconds: number | undefined

  private constructor(
    x509: X509Bundle,
    jwt: JwtBundle,
    wit: JwtBundle,
    sequence?: bigint,
    refreshHintSeconds?: number,
  ) {
    this.#x509 = x509
    this.#jwt = jwt
    this.#wit = wit
    this.#sequence = sequence
    this.#refreshHintSeconds = refreshHintSeconds
  }

  /**
   * A bundle of `trustDomain` from its parts; a missing part is empty.
   * @throws ERR_BUNDLE_MALFORMED when a part belongs to another trust domain, or the sequence
   *   or refresh hint is out of range
   */
  static of(trustDomain: TrustDomain, parts: SpiffeBundleParts = {}): SpiffeBundle {
    const x509 = parts.x509 ?? X509Bundle.empty(trustDomain)
    const jwt = parts.jwt ?? JwtBundle.empty(trustDomain)
    const wit = parts.wit ?? JwtBundle.empty(trustDomain)
    if (
      !x509.trustDomain.equals(trustDomain) ||
      !jwt.trustDomain.equals(trustDomain) ||
      !wit.trustDomain.equals(trustDomain)
    ) {
      throw malformed(`a bundle part does not belong to trust domain ${trustDomain.name}`)
    }
    const { sequence, refreshHintSeconds: hint } = parts
    if (
      sequence !== undefined &&
      (typeof sequence !== 'bigint' || sequence < 0n || sequence > MAX_SPIFFE_SEQUENCE)
    ) {
      throw malformed('spiffe_sequence must be an integer from 0 to 2^64 - 1')
    }
    if (hint !== undefined && (!Number.isSafeInteger(hint) || hint < 0)) {
      throw malformed('spiffe_refresh_hint must be a whole number of seconds >= 0')
    }
    return new SpiffeBundle(x509, jwt, wit, sequence, hint)
  }

  /**
   * Parses a bundle document (Bundle §4). `keys` is required (it may be empty). A key element is
   * ignored on its own, never failing the whole set, when its `use` is missing or is not
   * `x509-svid`/`jwt-svid`, its `kty`/`crv` is unknown, or it is otherwise unusable (an `x509-svid`
   * element needs exactly one standard-base64 `x5c` certificate whose key matches the element's key
   * members, and no `kid`; a `jwt-svid` element needs a `kid` and a valid key). Use
   * {@link SpiffeBundle.parseDetailed} to learn which elements were ignored and why.
   * @throws ERR_BUNDLE_MALFORMED (the document itself: JSON, `keys`, a repeated `kid`, sequence or hint)
   */
  static parse(trustDomain: TrustDomain, document: string | Uint8Array): SpiffeBundle {
    return SpiffeBundle.parseDetailed(trustDomain, document).bundle
  }

  /**
   * Parses a bundle document like {@link SpiffeBundle.parse}, and also lists the key elements that
   * were ignored and why, so that an operator can be warned.
   * @throws ERR_BUNDLE_MALFORMED
   * @example
   * const { bundle, ignoredKeys } = SpiffeBundle.parseDetailed(TrustDomain.parse('partner.org'), text)
   * if (ignoredKeys.length > 0) console.warn(ignoredKeys.map((k) => `#${k.index}: ${k.reason}`).join('\n'))
   */
  static parseDetailed(trustDomain: TrustDomain, document: string | Uint8Array): SpiffeBundleParseResult {
    const text = documentText(document)
    const doc = parseJsonDocument(text)
    if (!isJsonObject(doc) || !Array.isArray(doc['keys']))
      throw malformed('a SPIFFE bundle needs a "keys" array')
    const { x509, jwt, wit, ignored } = readBundleKeys(doc['keys'] as unknown[])
    assertUniqueKids(jwt.map((a) => a.kid))
    assertUniqueKids(wit.map((a) => a.kid))
    const hint = doc['spiffe_refresh_hint'] ?? undefined
    if (hint !== undefined && typeof hint !== 'number')
      throw malformed('spiffe_refresh_hint must be a number')
    const bundle = SpiffeBundle.of(trustDomain, {
      x509: X509Bundle.fromAuthorities(trustDomain, x509),
      jwt: JwtBundle.fromAuthorities(trustDomain, jwt),
      wit: JwtBundle.fromAuthorities(trustDomain, wit),
      sequence: readSequence(text, doc),
      refreshHintSeconds: hint,
    })
    return Object.freeze({ bundle, ignoredKeys: Object.freeze(ignored) })
  }

  /** The trust domain the bundle belongs to. */
  get trustDomain(): TrustDomain {
    return this.#x509.trustDomain
  }

  /** The X.509 authorities (CA certificates). */
  get x509Authorities(): ReadonlyArray<Certificate> {
    return this.#x509.authorities
  }

  /** The JWT authorities, in `kid` order. */
  get jwtAuthorities(): ReadonlyArray<JwtAuthority> {
    return this.#jwt.authorities
  }

  /** The WIT-SVID authorities (`use: wit-svid`), in `kid` order. */
  get witAuthorities(): ReadonlyArray<JwtAuthority> {
    return this.#wit.authorities
  }

  /** `spiffe_sequence`, when set. */
  get sequence(): bigint | undefined {
    return this.#sequence
  }

  /** `spiffe_refresh_hint` in seconds, when set. */
  get refreshHintSeconds(): number | undefined {
    return this.#refreshHintSeconds
  }

  /** The X.509 part. */
  toX509Bundle(): X509Bundle {
    return this.#x509
  }

  /** The JWT part. */
  toJwtBundle(): JwtBundle {
    return this.#jwt
  }

  /** The WIT-SVID part, as a JWKS bundle (what FetchWITBundles serves). */
  toWitBundle(): JwtBundle {
    return this.#wit
  }

  /** This bundle with its parts replaced; omitted parts are kept. @throws ERR_BUNDLE_MALFORMED */
  with(parts: SpiffeBundleParts): SpiffeBundle {
    return SpiffeBundle.of(this.trustDomain, {
      x509: this.#x509,
      jwt: this.#jwt,
      wit: this.#wit,
      sequence: this.#sequence,
      refreshHintSeconds: this.#refreshHintSeconds,
      ...parts,
    })
  }

  /**
   * The bundle document as compact JSON: `keys` (X.509 entries first, each with `use`, the key
   * members and `x5c`; then JWT entries with `use`, `kty`, `kid` and the key members, then WIT entries alike), then
   * `spiffe_sequence` and `spiffe_refresh_hint` when set.
   * @throws ERR_KEY_MALFORMED when an authority's key type has no JWK form
   */
  marshal(): string {
    const keys = [
      ...this.#x509.authorities.map((c) => ({
        use: 'x509-svid',
        ...exportPublicJwk(c.publicKey),
        x5c: [c.der.toString('base64')],
      })),
      ...this.#jwt.toJwks().keys.map((k) => ({ use: 'jwt-svid', ...k })),
      ...this.#wit.toJwks().keys.map((k) => ({ use: 'wit-svid', ...k })),
    ]
    let json = `{"keys":${JSON.stringify(keys)}`
    if (this.#sequence !== undefined) json += `,"spiffe_sequence":${this.#sequence.toString()}`
    if (this.#refreshHintSeconds !== undefined) json += `,"spiffe_refresh_hint":${this.#refreshHintSeconds}`
    return `${json}}`
  }

  /** True for equal X.509, JWT and WIT parts, sequence and refresh hint. */
  equals(other: SpiffeBundle): boolean {
    return (
      this.#x509.equals(other.#x509) &&
      this.#jwt.equals(other.#jwt) &&
      this.#wit.equals(other.#wit) &&
      this.#sequence === other.#sequence &&
      this.#refreshHintSeconds === other.#refreshHintSeconds
    )
  }
}

/** `spiffe_sequence` read from the source text, so that no bit of a 64-bit value is lost. */
function readSequence(text: string, doc: Readonly<Record<string, unknown>>): bigint | undefined {
  const value = doc['spiffe_sequence']
  if (value === undefined || value === null) return undefined
  const raw = listMembers(text).findLast((m) => m.name === 'spiffe_sequence')?.raw ?? ''
  if (!/^\d+$/.test(raw)) throw malformed('spiffe_sequence must be a non-negative integer')
  const sequence = BigInt(raw)
  if (sequence > MAX_SPIFFE_SEQUENCE) throw malformed('spiffe_sequence does not fit in 64 bits')
  return sequence
}

function malformed(message: string, cause?: unknown): IdentityError {
  return new IdentityError('ERR_BUNDLE_MALFORMED', message, { cause })
}
