import { createPrivateKey, createPublicKey, type KeyObject, sign } from 'node:crypto'
import {
  bitString,
  explicit,
  oid,
  sequence,
  smallInteger,
  unsignedInteger,
  x509Time,
} from '../../lib/core/der/der-writer.js'
import { isValidDnsName } from '../../lib/core/dns-name.js'
import { IdentityError } from '../../lib/core/errors.js'
import { X509_NOT_BEFORE_BACKDATE_MS } from '../../lib/core/revocation.js'
import type { SpiffeId } from '../../lib/core/spiffe-id.js'
import type { TrustDomain } from '../../lib/core/trust-domain.js'
import { type Certificate, parseCertificate } from '../../lib/core/x509/certificate.js'
import { encodeName } from './distinguished-name.js'
import {
  authorityKeyIdentifier,
  basicConstraints,
  CA_KEY_USAGE,
  keyIdentifierOf,
  keyUsage,
  LEAF_KEY_USAGE,
  serverAndClientAuth,
  subjectAltName,
  subjectKeyIdentifier,
} from './extensions.js'
import { randomSerial } from './serial.js'

/** notBefore is set this far in the past so peers with a slightly slow clock accept new certificates. */
export const BACKDATE_MS = X509_NOT_BEFORE_BACKDATE_MS
const ECDSA_WITH_SHA256 = sequence(oid('1.2.840.10045.4.3.2'))
const VERSION_3 = explicit(0, smallInteger(2))
const ORGANIZATION = 'Tessera'

/** What the CA needs to issue one leaf. */
export interface LeafRequest {
  /** SubjectPublicKeyInfo of the workload key (from a verified CSR). */
  readonly spkiDer: Buffer
  readonly id: SpiffeId
  readonly dnsNames?: ReadonlyArray<string>
  readonly ttlMs: number
  readonly nowMs: number
}

/** An issued leaf: DER, and its expiry (capped at the CA's). */
export interface IssuedLeaf {
  readonly der: Buffer
  readonly notAfterMs: number
}

/**
 * An X.509 signing authority for one trust domain: an EC P-256 key and its self-signed certificate.
 * Issues SPIFFE X509-SVID leaves; the per-CA parts of the template are encoded once.
 */
export class X509Ca {
  readonly certificate: Certificate
  readonly trustDomain: TrustDomain
  readonly #key: KeyObject
  readonly #issuer: Buffer
  readonly #fixedExtensions: Buffer
  /** The leaf subject when no DNS name asks for a CN: the same for every leaf. */
  readonly #plainSubject = encodeName({ country: 'US', organization: ORGANIZATION })

  private constructor(trustDomain: TrustDomain, certificate: Certificate, key: KeyObject) {
    this.trustDomain = trustDomain
    this.certificate = certificate
    this.#key = key
    this.#issuer = certificate.subjectDer
    const caKeyId = certificate.subjectKeyId ?? keyIdentifierOf(certificate.spkiDer)
    this.#fixedExtensions = Buffer.concat([
      basicConstraints(false),
      keyUsage(LEAF_KEY_USAGE),
      serverAndClientAuth(),
      authorityKeyIdentifier(caKeyId),
    ])
  }

  /**
   * Creates a new self-signed root CA for `trustDomain` with a fresh P-256 key supplied by the caller.
   * @throws ERR_TTL_INVALID
   */
  static createRoot(opts: {
    trustDomain: TrustDomain
    key: KeyObject
    nowMs: number
    ttlMs: number
  }): X509Ca {
    if (!(opts.ttlMs > 0)) throw new IdentityError('ERR_TTL_INVALID', 'CA TTL must be positive')
    const problem = opts.trustDomain.issuanceProblem()
    if (problem) throw new IdentityError('ERR_TRUST_DOMAIN_INVALID', problem)
    const spkiDer = createPublicKey(opts.key).export({ type: 'spki', format: 'der' })
    const serial = randomSerial()
    const keyId = keyIdentifierOf(spkiDer)
    const name = encodeName({
      country: 'US',
      organization: ORGANIZATION,
      serialNumber: serial.toString('hex'),
    })
    const tbs = sequence(
      VERSION_3,
      unsignedInteger(serial),
      ECDSA_WITH_SHA256,
      name,
      validity(opts.nowMs - BACKDATE_MS, opts.nowMs + opts.ttlMs),
      name,
      spkiDer,
      explicit(
        3,
        sequence(
          basicConstraints(true),
          keyUsage(CA_KEY_USAGE),
          subjectKeyIdentifier(keyId),
          authorityKeyIdentifier(keyId),
          subjectAltName([opts.trustDomain.idString()], [], false),
        ),
      ),
    )
    const der = signTbs(tbs, opts.key)
    return new X509Ca(opts.trustDomain, parseCertificate(der), opts.key)
  }

  /**
   * Restores a CA from its certificate and PKCS#8 key (as persisted).
   * @throws ERR_CERT_MALFORMED, ERR_KEY_MALFORMED, ERR_KEY_MISMATCH
   */
  static fromParts(trustDomain: TrustDomain, certDer: Buffer, keyPkcs8Der: Buffer): X509Ca {
    const certificate = parseCertificate(certDer)
    let key: KeyObject
    try {
      key = createPrivateKey({ key: keyPkcs8Der, format: 'der', type: 'pkcs8' })
    } catch (err) {
      throw new IdentityError('ERR_KEY_MALFORMED', 'CA private key is not PKCS#8 DER', { cause: err })
    }
    const spki = createPublicKey(key).export({ type: 'spki', format: 'der' })
    if (!spki.equals(certificate.spkiDer))
      throw new IdentityError('ERR_KEY_MISMATCH', 'CA key does not match its certificate')
    return new X509Ca(trustDomain, certificate, key)
  }

  get notAfterMs(): number {
    return this.certificate.notAfterMs
  }

  /** The CA private key as PKCS#8 DER, for the key journal only. */
  exportKey(): Buffer {
    return this.#key.export({ type: 'pkcs8', format: 'der' })
  }

  /**
   * Issues an X509-SVID leaf for `req.id`, valid from now − 10 s until now + TTL, capped at the CA's expiry.
   * @throws ERR_ID_INVALID (root ID, foreign trust domain, unissuable), ERR_DNS_NAME_INVALID, ERR_TTL_INVALID, ERR_CA_EXPIRED
   */
  issueLeaf(req: LeafRequest): IssuedLeaf {
    checkLeafRequest(req, this.trustDomain)
    if (req.nowMs >= this.certificate.notAfterMs)
      throw new IdentityError('ERR_CA_EXPIRED', 'the signing CA has expired')
    const notAfterMs = Math.min(req.nowMs + req.ttlMs, this.certificate.notAfterMs)
    const dnsNames = req.dnsNames ?? []
    const tbs = sequence(
      VERSION_3,
      unsignedInteger(randomSerial()),
      ECDSA_WITH_SHA256,
      this.#issuer,
      validity(req.nowMs - BACKDATE_MS, notAfterMs),
      dnsNames.length === 0
        ? this.#plainSubject
        : encodeName({ country: 'US', organization: ORGANIZATION, commonName: dnsNames[0] }),
      req.spkiDer,
      explicit(
        3,
        sequence(
          this.#fixedExtensions,
          subjectKeyIdentifier(keyIdentifierOf(req.spkiDer)),
          subjectAltName([req.id.toString()], dnsNames, false),
        ),
      ),
    )
    return { der: signTbs(tbs, this.#key), notAfterMs: Math.floor(notAfterMs / 1000) * 1000 }
  }
}

function validity(notBeforeMs: number, notAfterMs: number): Buffer {
  return sequence(x509Time(notBeforeMs), x509Time(notAfterMs))
}

function signTbs(tbs: Buffer, key: KeyObject): Buffer {
  return sequence(tbs, ECDSA_WITH_SHA256, bitString(sign('sha256', tbs, key)))
}

function checkLeafRequest(req: LeafRequest, trustDomain: TrustDomain): void {
  if (req.id.isRoot) throw new IdentityError('ERR_ID_INVALID', 'an X509-SVID needs a non-root path')
  if (!req.id.memberOf(trustDomain))
    throw new IdentityError('ERR_ID_INVALID', 'SPIFFE ID is not in the CA trust domain')
  const problem = req.id.issuanceProblem()
  if (problem) throw new IdentityError('ERR_ID_INVALID', problem)
  if (!(req.ttlMs > 0) || !Number.isFinite(req.ttlMs))
    throw new IdentityError('ERR_TTL_INVALID', 'TTL must be positive')
  for (const name of req.dnsNames ?? []) {
    if (!isValidDnsName(name))
      throw new IdentityError('ERR_DNS_NAME_INVALID', 'DNS name is not a valid host name')
  }
}
