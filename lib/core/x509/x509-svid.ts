import type { KeyObject } from 'node:crypto'
import { IdentityError } from '../errors.js'
import { SpiffeId } from '../spiffe-id.js'
import { type Certificate, KeyUsageBit, parseCertificates } from './certificate.js'
import { decodePem } from './pem.js'
import { keyMatchesCertificate, parsePrivateKey } from './private-key.js'

/** An X509-SVID: the SPIFFE ID, the chain (leaf first) and the private key of the leaf. */
export interface X509Svid {
  readonly id: SpiffeId
  readonly certificates: ReadonlyArray<Certificate>
  readonly privateKey: KeyObject
  /** Operator label from the registration entry ('' when none). */
  readonly hint: string
}

function invalid(message: string): IdentityError {
  return new IdentityError('ERR_X509_SVID_INVALID', message)
}

/**
 * The SPIFFE ID of a leaf certificate: its one and only URI SAN.
 * @throws ERR_X509_SVID_INVALID
 */
export function idFromCertificate(cert: Certificate): SpiffeId {
  if (cert.uriSans.length !== 1) throw invalid('certificate must have exactly one URI SAN')
  try {
    return SpiffeId.parse(cert.uriSans[0] ?? '')
  } catch (err) {
    throw new IdentityError('ERR_X509_SVID_INVALID', 'URI SAN is not a valid SPIFFE ID', { cause: err })
  }
}

/**
 * Checks the leaf rules of spec §4 / §7.B (one URI SAN with a non-root path, not a CA, digitalSignature
 * set, keyCertSign and cRLSign clear) and returns the leaf's SPIFFE ID.
 * @throws ERR_X509_SVID_INVALID
 */
export function validateLeaf(cert: Certificate): SpiffeId {
  const id = idFromCertificate(cert)
  if (id.isRoot) throw invalid('leaf SPIFFE ID must have a non-root path')
  if (cert.basicConstraints?.isCa) throw invalid('leaf certificate must not be a CA')
  const bits = cert.keyUsage?.bits
  if (!bits?.has(KeyUsageBit.digitalSignature))
    throw invalid('leaf certificate must have the digitalSignature key usage')
  if (bits.has(KeyUsageBit.keyCertSign))
    throw invalid('leaf certificate must not have the keyCertSign key usage')
  if (bits.has(KeyUsageBit.cRLSign)) throw invalid('leaf certificate must not have the cRLSign key usage')
  return id
}

/**
 * Checks the signing-certificate rules (cA=true with the keyCertSign key usage).
 * @throws ERR_X509_SVID_INVALID
 */
export function validateSigningCertificate(cert: Certificate): void {
  if (!cert.basicConstraints?.isCa) throw invalid('signing certificate must be a CA')
  if (!cert.keyUsage?.bits.has(KeyUsageBit.keyCertSign))
    throw invalid('signing certificate must have the keyCertSign key usage')
}

/**
 * Parses an X509-SVID as the Workload API carries it: concatenated DER certificates (leaf first) and an
 * unencrypted PKCS#8 DER key, and checks it the way go-spiffe's `x509svid.ParseRaw` does (spec §7.B).
 * @throws ERR_CERT_MALFORMED, ERR_KEY_MALFORMED, ERR_X509_SVID_INVALID, ERR_KEY_MISMATCH
 */
export function parseX509Svid(certsDer: Uint8Array, keyDer: Uint8Array, hint = ''): X509Svid {
  const certificates = parseCertificates(certsDer)
  const privateKey = parsePrivateKey(keyDer)
  return assembleSvid(certificates, privateKey, hint)
}

/**
 * Parses an X509-SVID from PEM: the certificates (leaf first) and a `PRIVATE KEY` block.
 * @throws ERR_PEM_MALFORMED and everything {@link parseX509Svid} throws
 */
export function parseX509SvidPem(
  certsPem: string | Uint8Array,
  keyPem: string | Uint8Array,
  hint = '',
): X509Svid {
  const certBlocks = decodePem(certsPem, 'CERTIFICATE')
  const keyBlocks = decodePem(keyPem, 'PRIVATE KEY')
  if (keyBlocks.length !== 1)
    throw new IdentityError('ERR_PEM_MALFORMED', 'expected exactly one PRIVATE KEY block')
  return parseX509Svid(Buffer.concat(certBlocks), keyBlocks[0] ?? Buffer.alloc(0), hint)
}

function assembleSvid(certificates: Certificate[], privateKey: KeyObject, hint: string): X509Svid {
  const [leaf, ...intermediates] = certificates
  if (!leaf) throw invalid('no certificates found')
  const id = validateLeaf(leaf)
  for (const cert of intermediates) validateSigningCertificate(cert)
  if (!keyMatchesCertificate(privateKey, leaf))
    throw new IdentityError('ERR_KEY_MISMATCH', 'private key does not match the leaf certificate')
  return { id, certificates, privateKey, hint }
}
