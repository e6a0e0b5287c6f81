import { IdentityError } from '../errors.js'
import type { TrustDomain } from '../trust-domain.js'
import type { JwtBundle } from './jwt-bundle.js'
import type { SpiffeBundle } from './spiffe-bundle.js'
import type { X509Bundle } from './x509-bundle.js'

/** Gives the X.509 bundle of a trust domain, for verifying X509-SVIDs. */
export interface X509BundleSource {
  /** The bundle of exactly `td`, or undefined when that trust domain is not trusted. */
  getX509BundleForTrustDomain(td: TrustDomain): X509Bundle | undefined
}

/** Gives the JWT bundle of a trust domain, for validating JWT-SVIDs. */
export interface JwtBundleSource {
  /** The bundle of exactly `td`, or undefined when that trust domain is not trusted. */
  getJwtBundleForTrustDomain(td: TrustDomain): JwtBundle | undefined
}

/** The bundles a {@link BundleSet} is built from. */
export interface BundleSetInit {
  readonly x509?: Iterable<X509Bundle>
  readonly jwt?: Iterable<JwtBundle>
}

/**
 * An immutable set of per-trust-domain bundles that serves both sources. Each trust domain has at
 * most one X.509 and one JWT bundle; bundles of different trust domains are never merged, and a
 * lookup only ever answers with the bundle of the trust domain asked for.
 */
export class BundleSet implements X509BundleSource, JwtBundleSource {
  readonly #x509: ReadonlyMap<string, X509Bundle>
  readonly #jwt: ReadonlyMap<string, JwtBundle>

  private constructor(x509: ReadonlyMap<string, X509Bundle>, jwt: ReadonlyMap<string, JwtBundle>) {
    this.#x509 = x509
    this.#jwt = jwt
  }

  /**
   * A set of the given bundles.
   * @throws ERR_BUNDLE_MALFORMED when two bundles of one kind have the same trust domain
   */
  static of(init: BundleSetInit): BundleSet {
    return new BundleSet(
      indexByTrustDomain(init.x509 ?? [], 'X.509'),
      indexByTrustDomain(init.jwt ?? [], 'JWT'),
    )
  }

  /**
   * A set holding the X.509 and JWT parts of each SPIFFE bundle.
   * @throws ERR_BUNDLE_MALFORMED when two bundles have the same trust domain
   */
  static fromSpiffeBundles(bundles: Iterable<SpiffeBundle>): BundleSet {
    const list = [...bundles]
    return BundleSet.of({ x509: list.map((b) => b.toX509Bundle()), jwt: list.map((b) => b.toJwtBundle()) })
  }

  /** A set with no bundles: nothing is trusted. */
  static empty(): BundleSet {
    return new BundleSet(new Map(), new Map())
  }

  /** The X.509 bundle of exactly `td`, or undefined. */
  getX509BundleForTrustDomain(td: TrustDomain): X509Bundle | undefined {
    return this.#x509.get(td.name)
  }

  /** The JWT bundle of exactly `td`, or undefined. */
  getJwtBundleForTrustDomain(td: TrustDomain): JwtBundle | undefined {
    return this.#jwt.get(td.name)
  }

  /** A new set in which `bundle` replaces the X.509 bundle of its trust domain. */
  withX509Bundle(bundle: X509Bundle): BundleSet {
    return new BundleSet(new Map(this.#x509).set(bundle.trustDomain.name, bundle), this.#jwt)
  }

  /** A new set in which `bundle` replaces the JWT bundle of its trust domain. */
  withJwtBundle(bundle: JwtBundle): BundleSet {
    return new BundleSet(this.#x509, new Map(this.#jwt).set(bundle.trustDomain.name, bundle))
  }

  /** A new set without any bundle of `td`. */
  withoutTrustDomain(td: TrustDomain): BundleSet {
    const x509 = new Map(this.#x509)
    const jwt = new Map(this.#jwt)
    x509.delete(td.name)
    jwt.delete(td.name)
    return new BundleSet(x509, jwt)
  }

  /** The trust domains with an X.509 or a JWT bundle, sorted by name. */
  trustDomains(): TrustDomain[] {
    const all = new Map<string, TrustDomain>()
    for (const b of this.#x509.values()) all.set(b.trustDomain.name, b.trustDomain)
    for (const b of this.#jwt.values()) all.set(b.trustDomain.name, b.trustDomain)
    return [...all.keys()].sort().map((name) => all.get(name)!)
  }

  /** The X.509 bundles, sorted by trust domain name. */
  x509Bundles(): X509Bundle[] {
    return sortedValues(this.#x509)
  }

  /** The JWT bundles, sorted by trust domain name. */
  jwtBundles(): JwtBundle[] {
    return sortedValues(this.#jwt)
  }
}

function indexByTrustDomain<B extends { readonly trustDomain: TrustDomain }>(
  bundles: Iterable<B>,
  kind: string,
): Map<string, B> {
  const map = new Map<string, B>()
  for (const b of bundles) {
    const name = b.trustDomain.name
    if (map.has(name))
      throw new IdentityError('ERR_BUNDLE_MALFORMED', `two ${kind} bundles for trust domain ${name}`)
    map.set(name, b)
  }
  return map
}

function sortedValues<B>(map: ReadonlyMap<string, B>): B[] {
  return [...map.keys()].sort().map((k) => map.get(k)!)
}
