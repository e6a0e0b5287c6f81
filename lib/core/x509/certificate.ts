import type { KeyObject } from 'node:crypto'
import {
  expectTag,
  rawOf,
  readOctetAlignedBitString,
  readOne,
  readSequence,
  readSmallInteger,
  readTlv,
  readUnsignedInteger,
  type Tlv,
  withErrorCode,
} from '../der/der-reader.js'
import { readTime } from '../der/der-text.js'
import { Tag } from '../der/der-writer.js'
import { IdentityError } from '../errors.js'
import {
  type CertificateExtensions,
  decodeCertificateExtensions,
  type Extension,
  readExtensionList,
} from './extensions.js'
import { createSpkiKey, readAlgorithmOid, readName, readSpki } from './x509-fields.js'

/** keyUsage bit numbers (RFC 5280 §4.2.1.3). */
export const KeyUsageBit = {
  digitalSignature: 0,
  contentCommitment: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
  encipherOnly: 7,
  decipherOnly: 8,
} as const

/** A parsed X.509 v3 certificate: exactly the fields SPIFFE validation needs, plus the raw parts. */
export interface Certificate {
  /** The whole certificate, DER. */
  readonly der: Buffer
  /** The TBSCertificate bytes the signature covers. */
  readonly tbs: Buffer
  /** Serial number as lowercase hex of the unsigned magnitude (no leading zeros except `0`). */
  readonly serialHex: string
  /** Raw DER of the issuer Name (compared byte for byte when building chains). */
  readonly issuerDer: Buffer
  /** Raw DER of the subject Name. */
  readonly subjectDer: Buffer
  readonly notBeforeMs: number
  readonly notAfterMs: number
  /** SubjectPublicKeyInfo, DER. */
  readonly spkiDer: Buffer
  /** The subject public key (created once, on first use or at parse time). */
  readonly publicKey: KeyObject
  /** Dotted OID of the outer signatureAlgorithm. */
  readonly signatureAlgorithm: string
  /** The signature value (for ECDSA: the DER Ecdsa-Sig-Value). */
  readonly signature: Buffer
  /** basicConstraints; undefined when the extension is absent. */
  readonly basicConstraints: Readonly<{ isCa: boolean; pathLen?: number; critical: boolean }> | undefined
  /** keyUsage bits set (see {@link KeyUsageBit}); undefined when the extension is absent. */
  readonly keyUsage: Readonly<{ bits: ReadonlySet<number>; critical: boolean }> | undefined
  /** extKeyUsage purpose OIDs (dotted); undefined when absent. */
  readonly extKeyUsage: ReadonlyArray<string> | undefined
  /** URI subjectAltNames, in order. */
  readonly uriSans: ReadonlyArray<string>
  /** DNS subjectAltNames, in order. */
  readonly dnsSans: ReadonlyArray<string>
  /** subjectKeyIdentifier bytes, if present. */
  readonly subjectKeyId: Buffer | undefined
  /** authorityKeyIdentifier keyIdentifier bytes, if present. */
  readonly authorityKeyId: Buffer | undefined
  /** Dotted OIDs of critical extensions this parser does not understand (chain building must refuse them). */
  readonly unhandledCriticalExtensions: ReadonlyArray<string>
}

/** The certificate fields other than the public key. */
type CertificateFields = Omit<Certificate, 'publicKey'>

/** A {@link Certificate} whose public key is made from `spkiDer` on first use. */
class ParsedCertificate implements Certificate {
  readonly der: Buffer
  readonly tbs: Buffer
  readonly serialHex: string
  readonly issuerDer: Buffer
  readonly subjectDer: Buffer
  readonly notBeforeMs: number
  readonly notAfterMs: number
  readonly spkiDer: Buffer
  readonly signatureAlgorithm: string
  readonly signature: Buffer
  readonly basicConstraints: Certificate['basicConstraints']
  readonly keyUsage: Certificate['keyUsage']
  readonly extKeyUsage: Certificate['extKeyUsage']
  readonly uriSans: ReadonlyArray<string>
  readonly dnsSans: ReadonlyArray<string>
  readonly subjectKeyId: Buffer | undefined
  readonly authorityKeyId: Buffer | undefined
  readonly unhandledCriticalExtensions: ReadonlyArray<string>
  #publicKey: KeyObject | undefined

  constructor(f: CertificateFields) {
    this.der = f.der
    this.tbs = f.tbs
    this.serialHex = f.serialHex
    this.issuerDer = f.issuerDer
    this.subjectDer = f.subjectDer
    this.notBeforeMs = f.notBeforeMs
    this.notAfterMs = f.notAfterMs
    this.spkiDer = f.spkiDer
    this.signatureAlgorithm = f.signatureAlgorithm
    this.signature = f.signature
    this.basicConstraints = f.basicConstraints
    this.keyUsage = f.keyUsage
    this.extKeyUsage = f.extKeyUsage
    this.uriSans = f.uriSans
    this.dnsSans = f.dnsSans
    this.subjectKeyId = f.subjectKeyId
    this.authorityKeyId = f.authorityKeyId
    this.unhandledCriticalExtensions = f.unhandledCriticalExtensions
  }

  /** Throws `ERR_CERT_MALFORMED` when node:crypto refuses the key. */
  get publicKey(): KeyObject {
    this.#publicKey ??= createSpkiKey(this.spkiDer, 'ERR_CERT_MALFORMED')
    return this.#publicKey
  }
}

/** Longest serial number magnitude accepted, in octets (RFC 5280 §4.1.2.2). */
const MAX_SERIAL_OCTETS = 20
const VERSION_TAG = 0xa0
const ISSUER_UNIQUE_ID_TAG = 0x81
const SUBJECT_UNIQUE_ID_TAG = 0x82
const EXTENSIONS_TAG = 0xa3

function refuse(message: string): never {
  throw new IdentityError('ERR_CERT_MALFORMED', message)
}

/** Reads the optional `[0] EXPLICIT Version` at `fields[0]`: 0 for v1, 2 for v3. */
function readVersion(fields: ReadonlyArray<Tlv>): number {
  if (fields[0]?.tag !== VERSION_TAG) return 0
  const inner = readSequence(fields[0], VERSION_TAG)
  if (inner.length !== 1) refuse('version is malformed')
  const version = readSmallInteger(inner[0], 0xff)
  if (version !== 0 && version !== 2) refuse('only version 1 and version 3 certificates are supported')
  return version
}

/** Reads the trailing optional TBSCertificate fields, which only a v3 certificate may carry. */
function readTrailingFields(
  fields: ReadonlyArray<Tlv>,
  from: number,
  version: number,
): CertificateExtensions {
  let next = from
  let extensions: Extension[] = []
  if (version === 2) {
    if (fields[next]?.tag === ISSUER_UNIQUE_ID_TAG) next++
    if (fields[next]?.tag === SUBJECT_UNIQUE_ID_TAG) next++
    if (fields[next]?.tag === EXTENSIONS_TAG) {
      const wrapper = readSequence(fields[next++], EXTENSIONS_TAG)
      if (wrapper.length !== 1) refuse('extensions are malformed')
      extensions = readExtensionList(wrapper[0])
    }
  }
  if (next !== fields.length) refuse('TBSCertificate has unexpected fields')
  return decodeCertificateExtensions(extensions)
}

function readSerialHex(tlv: Tlv | undefined): string {
  const magnitude = readUnsignedInteger(tlv)
  if (magnitude.length > MAX_SERIAL_OCTETS) refuse('serial number is longer than 20 octets')
  return magnitude.toString('hex').replace(/^0+(?=.)/, '')
}

function decodeCertificate(cert: Tlv): Certificate {
  const [tbs, outerAlgorithm, signatureValue, extra] = readSequence(cert)
  if (extra !== undefined) refuse('certificate has extra fields')
  const fields = readSequence(tbs)
  const version = readVersion(fields)
  let next = fields[0]?.tag === VERSION_TAG ? 1 : 0
  const serialHex = readSerialHex(fields[next++])
  const innerAlgorithm = fields[next++]
  const signatureAlgorithm = readAlgorithmOid(outerAlgorithm)
  readAlgorithmOid(innerAlgorithm)
  if (!rawOf(innerAlgorithm!).equals(rawOf(outerAlgorithm!)))
    refuse('inner and outer signature algorithms differ')
  const issuerDer = readName(fields[next++])
  const validity = readSequence(fields[next++])
  if (validity.length !== 2) refuse('validity is not two times')
  const subjectDer = readName(fields[next++])
  const spkiDer = readSpki(fields[next++])
  return new ParsedCertificate({
    der: rawOf(cert),
    tbs: rawOf(tbs!),
    serialHex,
    issuerDer,
    subjectDer,
    notBeforeMs: readTime(validity[0]),
    notAfterMs: readTime(validity[1]),
    spkiDer,
    signatureAlgorithm,
    signature: readOctetAlignedBitString(signatureValue),
    ...readTrailingFields(fields, next, version),
  })
}

/**
 * Parses one DER certificate, with the rules Go's parser applies (spec §7.D): v3 (or v1 without
 * extensions), a non-negative serial of at most 20 octets, equal inner and outer signature
 * algorithms, no duplicate extension, no critical authorityKeyIdentifier, IA5 URI SANs.
 * The result refers to `der` without copying it.
 * @throws ERR_CERT_MALFORMED (DER problems are kept as `cause`)
 */
export function parseCertificate(der: Uint8Array): Certificate {
  return withErrorCode('ERR_CERT_MALFORMED', 'certificate is malformed', () =>
    // One private copy: every field is a view into it, so the caller may reuse its buffer.
    decodeCertificate(readOne(Buffer.from(der), Tag.SEQUENCE)),
  )
}

/**
 * Parses concatenated DER certificates (a chain or a bundle), in order; empty input gives `[]`.
 * @throws ERR_CERT_MALFORMED
 */
export function parseCertificates(concatenatedDer: Uint8Array): Certificate[] {
  return withErrorCode('ERR_CERT_MALFORMED', 'certificate list is malformed', () => {
    const source = Buffer.from(concatenatedDer)
    const out: Certificate[] = []
    for (let at = 0; at < source.length; ) {
      const cert = expectTag(readTlv(source, at), Tag.SEQUENCE)
      out.push(decodeCertificate(cert))
      at = cert.end
    }
    return out
  })
}
