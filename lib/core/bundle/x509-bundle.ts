import { IdentityError } from '../errors.js'
import type { TrustDomain } from '../trust-domain.js'
import { type Certificate, parseCertificates } from '../x509/certificate.js'
import { decodePem, encodePem } from '../x509/pem.js'

/**
 * The X.509 authorities (CA certificates) of one trust domain. Immutable: the `with…` methods
 * return a new bundle. Authorities are kept in the order given, without duplicates (by DER).
 */
export class X509Bundle {
  readonly #trustDomain: TrustDomain
  readonly #authorities: ReadonlyArray<Certificate>
  readonly #keys: ReadonlySet<string>

  private constructor(trustDomain: TrustDomain, authorities: Iterable<Certificate>) {
    const unique: Certificate[] = []
    const keys = new Set<string>()
    for (const cert of authorities) {
      const key = derKey(cert)
      if (!keys.has(key)) {
        keys.add(key)
        unique.push(cert)
      }
    }
    this.#trustDomain = trustDomain
    this.#authorities = Object.freeze(unique)
    this.#keys = keys
  }

  /** A bundle holding `authorities` (copied; repeated certificates are kept once). */
  static fromAuthorities(trustDomain: TrustDomain, authorities: Iterable<Certificate>): X509Bundle {
    return new X509Bundle(trustDomain, authorities)
  }

  /** A bundle with no authorities. */
  static empty(trustDomain: TrustDomain): X509Bundle {
    return new X509Bundle(trustDomain, [])
  }

  /**
   * Parses concatenated DER certificates, as the Workload API carries bundles. Empty input gives
   * an empty bundle.
   * @throws ERR_BUNDLE_MALFORMED (with the certificate error as `cause`)
   */
  static parseDer(trustDomain: TrustDomain, der: Uint8Array): X509Bundle {
    if (!(der instanceof Uint8Array))
      throw new IdentityError('ERR_BUNDLE_MALFORMED', 'X.509 bundle must be bytes')
    if (der.length === 0) return X509Bundle.empty(trustDomain)
    // Certificates refer to the bytes they were parsed from: copy, so the caller cannot change them.
    const certs = asBundleError(() => parseCertificates(Buffer.from(der)))
    return new X509Bundle(trustDomain, certs)
  }

  /**
   * Parses PEM `CERTIFICATE` blocks. Input without any block gives an empty bundle.
   * @throws ERR_BUNDLE_MALFORMED (with the PEM or certificate error as `cause`)
   */
  static parsePem(trustDomain: TrustDomain, pem: string | Uint8Array): X509Bundle {
    const blocks = asBundleError(() => decodePem(pem, 'CERTIFICATE'))
    return new X509Bundle(
      trustDomain,
      blocks.flatMap((der) => asBundleError(() => parseCertificates(der))),
    )
  }

  /** The trust domain whose X509-SVIDs chain to these authorities. */
  get trustDomain(): TrustDomain {
    return this.#trustDomain
  }

  /** The CA certificates, in order. */
  get authorities(): ReadonlyArray<Certificate> {
    return this.#authorities
  }

  /** True when there is no authority: no X509-SVID of this trust domain can verify. */
  get isEmpty(): boolean {
    return this.#authorities.length === 0
  }

  /** True when a certificate with the same DER is an authority of this bundle. */
  hasAuthority(cert: Certificate): boolean {
    return this.#keys.has(derKey(cert))
  }

  /** A new bundle with `cert` added at the end (the same content when it is already there). */
  withAuthority(cert: Certificate): X509Bundle {
    return new X509Bundle(this.#trustDomain, [...this.#authorities, cert])
  }

  /** A new bundle without `cert` (compared by DER). */
  withoutAuthority(cert: Certificate): X509Bundle {
    const key = derKey(cert)
    return new X509Bundle(
      this.#trustDomain,
      this.#authorities.filter((a) => derKey(a) !== key),
    )
  }

  /** The authorities as concatenated DER (the Workload API form). */
  marshalDer(): Buffer {
    return Buffer.concat(this.#authorities.map((c) => c.der))
  }

  /** The authorities as PEM `CERTIFICATE` blocks. */
  marshalPem(): string {
    return this.#authorities.map((c) => encodePem('CERTIFICATE', c.der)).join('')
  }

  /** True for the same trust domain and the same set of authorities (order does not matter). */
  equals(other: X509Bundle): boolean {
    if (!this.#trustDomain.equals(other.#trustDomain)) return false
    if (this.#keys.size !== other.#keys.size) return false
    for (const key of this.#keys) if (!other.#keys.has(key)) return false
    return true
  }
}

function derKey(cert: Certificate): string {
  return cert.der.toString('base64')
}

function asBundleError<T>(fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    throw new IdentityError('ERR_BUNDLE_MALFORMED', 'the X.509 bundle does not parse', { cause: err })
  }
}
