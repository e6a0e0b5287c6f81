import { createPublicKey, KeyObject } from 'node:crypto'
import { IdentityError } from '../errors.js'
import type { TrustDomain } from '../trust-domain.js'
import { isJsonObject, parseJsonDocument } from './json-document.js'
import { exportPublicJwk, importPublicJwk, isSupportedJwk, type PublicJwk } from './jwk.js'

/** One JWT signing authority of a trust domain: the public key that verifies JWT-SVIDs with `kid`. */
export interface JwtAuthority {
  /** The key ID; JWT-SVID headers name it. Non-empty, unique within a bundle. */
  readonly kid: string
  /** The public key. */
  readonly key: KeyObject
  /** The key's public JWK members (EC coordinates padded to the curve size). */
  readonly jwk: PublicJwk
}

/** A JWK as the Workload API publishes it: `kty`, `kid`, then the key members. */
export type JwtBundleJwk = Readonly<{ kty: string; kid: string } & Record<string, string>>

/**
 * The JWT authorities of one trust domain, keyed by `kid`. Immutable: the `with…` methods return
 * a new bundle. Authorities are kept in `kid` order, so the marshalled form is deterministic.
 */
export class JwtBundle {
  readonly #trustDomain: TrustDomain
  readonly #byKid: ReadonlyMap<string, JwtAuthority>
  readonly #authorities: ReadonlyArray<JwtAuthority>

  private constructor(trustDomain: TrustDomain, authorities: Iterable<JwtAuthority>) {
    const sorted = [...authorities].sort((a, b) => (a.kid < b.kid ? -1 : a.kid > b.kid ? 1 : 0))
    this.#trustDomain = trustDomain
    this.#authorities = Object.freeze(sorted)
    this.#byKid = new Map(sorted.map((a) => [a.kid, a]))
  }

  /**
   * A bundle holding `authorities`. A private key is reduced to its public half.
   * @throws ERR_BUNDLE_MALFORMED on an empty or repeated `kid`; ERR_KEY_MALFORMED on an unusable key
   */
  static fromAuthorities(
    trustDomain: TrustDomain,
    authorities: Iterable<Readonly<{ kid: string; key: KeyObject }>>,
  ): JwtBundle {
    const built = [...authorities].map((a) => buildAuthority(a.kid, a.key))
    assertUniqueKids(built.map((a) => a.kid))
    return new JwtBundle(trustDomain, built)
  }

  /** A bundle with no authorities. */
  static empty(trustDomain: TrustDomain): JwtBundle {
    return new JwtBundle(trustDomain, [])
  }

  /**
   * Parses a JWKS document (JSON text or UTF-8 bytes): the Workload API form (no `use`) or the SPIFFE
   * form. A key whose `use` is present and is not `jwt-svid` is not a JWT authority, and a key with
   * an unknown `kty` or `crv` is ignored on its own (Bundle §4.1–4.2); every other key needs a
   * non-empty, unique `kid` and valid key members.
   * @throws ERR_BUNDLE_MALFORMED
   */
  static parse(trustDomain: TrustDomain, document: string | Uint8Array): JwtBundle {
    return JwtBundle.fromJwks(trustDomain, parseJsonDocument(document))
  }

  /**
   * Builds a bundle from an already parsed JWKS value (`{ "keys": [...] }`), with the rules of
   * {@link JwtBundle.parse}.
   * @throws ERR_BUNDLE_MALFORMED
   */
  static fromJwks(trustDomain: TrustDomain, jwks: unknown): JwtBundle {
    if (!isJsonObject(jwks) || !Array.isArray(jwks['keys'])) {
      throw new IdentityError('ERR_BUNDLE_MALFORMED', 'a JWKS must be an object with a "keys" array')
    }
    const authorities = (jwks['keys'] as unknown[])
      .filter(isJwtKeyCandidate)
      .map((entry) => authorityFromJwk(entry))
    assertUniqueKids(authorities.map((a) => a.kid))
    return new JwtBundle(trustDomain, authorities)
  }

  /** The trust domain whose JWT-SVIDs these authorities sign. */
  get trustDomain(): TrustDomain {
    return this.#trustDomain
  }

  /** The authorities, in `kid` order. */
  get authorities(): ReadonlyArray<JwtAuthority> {
    return this.#authorities
  }

  /** True when there is no authority: no JWT-SVID of this trust domain can validate. */
  get isEmpty(): boolean {
    return this.#authorities.length === 0
  }

  /** The authority with this `kid`, or undefined. */
  findAuthority(kid: string): JwtAuthority | undefined {
    return this.#byKid.get(kid)
  }

  /** True when an authority has this `kid`. */
  hasAuthority(kid: string): boolean {
    return this.#byKid.has(kid)
  }

  /**
   * A new bundle with this authority added, replacing any with the same `kid`.
   * @throws ERR_BUNDLE_MALFORMED on an empty `kid`; ERR_KEY_MALFORMED on an unusable key
   */
  withAuthority(kid: string, key: KeyObject): JwtBundle {
    const added = buildAuthority(kid, key)
    return new JwtBundle(this.#trustDomain, [...this.#authorities.filter((a) => a.kid !== kid), added])
  }

  /** A new bundle without the authority `kid` (the same content when it is absent). */
  withoutAuthority(kid: string): JwtBundle {
    return new JwtBundle(
      this.#trustDomain,
      this.#authorities.filter((a) => a.kid !== kid),
    )
  }

  /** The Workload API JWKS value: only `kty`, `kid` and the key members, no `use`. */
  toJwks(): Readonly<{ keys: ReadonlyArray<JwtBundleJwk> }> {
    return { keys: this.#authorities.map((a) => workloadJwk(a)) }
  }

  /** The Workload API JWKS document as compact JSON. */
  marshal(): string {
    return JSON.stringify(this.toJwks())
  }

  /** True for the same trust domain and the same `kid`s with equal keys. */
  equals(other: JwtBundle): boolean {
    if (!this.#trustDomain.equals(other.#trustDomain)) return false
    if (this.#authorities.length !== other.#authorities.length) return false
    return this.#authorities.every((a) => {
      const b = other.#byKid.get(a.kid)
      return b !== undefined && a.key.equals(b.key)
    })
  }
}

/** False for a key that is not for JWT-SVIDs (`use` other than `jwt-svid`) or of an unknown type or curve. */
function isJwtKeyCandidate(entry: unknown): boolean {
  if (!isJsonObject(entry)) return true // refused, with a reason, by authorityFromJwk
  if (entry['use'] !== undefined && entry['use'] !== 'jwt-svid') return false
  return isSupportedJwk(entry)
}

/** The Workload API member order: `kty`, `kid`, then the key members. */
function workloadJwk(authority: JwtAuthority): JwtBundleJwk {
  const { kty, ...params } = authority.jwk
  return { kty, kid: authority.kid, ...params }
}

/**
 * Builds one authority from a JWK object that has a `kid`.
 * @throws ERR_BUNDLE_MALFORMED
 */
export function authorityFromJwk(entry: unknown): JwtAuthority {
  if (!isJsonObject(entry)) throw new IdentityError('ERR_BUNDLE_MALFORMED', 'a JWKS key must be an object')
  const kid = entry['kid']
  if (typeof kid !== 'string' || kid.length === 0) {
    throw new IdentityError('ERR_BUNDLE_MALFORMED', 'every JWT authority needs a non-empty "kid"')
  }
  if (!isSupportedJwk(entry))
    throw new IdentityError('ERR_BUNDLE_MALFORMED', 'unsupported JWK "kty" or "crv"')
  try {
    const key = importPublicJwk(entry)
    return Object.freeze({ kid, key, jwk: exportPublicJwk(key) })
  } catch (err) {
    throw new IdentityError('ERR_BUNDLE_MALFORMED', `JWT authority "${kid}" has a bad key`, { cause: err })
  }
}

function buildAuthority(kid: string, key: KeyObject): JwtAuthority {
  if (typeof kid !== 'string' || kid.length === 0) {
    throw new IdentityError('ERR_BUNDLE_MALFORMED', 'a JWT authority needs a non-empty "kid"')
  }
  if (!(key instanceof KeyObject) || key.type === 'secret') {
    throw new IdentityError('ERR_KEY_MALFORMED', 'a JWT authority key must be an asymmetric KeyObject')
  }
  const pub = key.type === 'private' ? createPublicKey(key) : key
  return Object.freeze({ kid, key: pub, jwk: exportPublicJwk(pub) })
}

/** @throws ERR_BUNDLE_MALFORMED when a `kid` repeats */
export function assertUniqueKids(kids: ReadonlyArray<string>): void {
  const seen = new Set<string>()
  for (const kid of kids) {
    if (seen.has(kid)) throw new IdentityError('ERR_BUNDLE_MALFORMED', `duplicate JWT authority "kid" ${kid}`)
    seen.add(kid)
  }
}
