/**
 * Decoders for the X.509 extensions we understand (RFC 5280 §4.2), shared by certificates and
 * certification requests. Each takes the DER value the extnValue OCTET STRING holds. Problems throw
 * `ERR_DER_MALFORMED`; callers re-label them with their own code.
 */
import {
  expectTag,
  failDer,
  readBitString,
  readBoolean,
  readEncapsulated,
  readOctetString,
  readOid,
  readSequence,
  readSmallInteger,
  type Tlv,
} from '../der/der-reader.js'
import { readIa5String } from '../der/der-text.js'
import { Tag } from '../der/der-writer.js'
import { Oid } from '../der/oid.js'
import { findUriSanProblem } from './uri-san.js'

/**
 * One Extension. `extnValue` is the OCTET STRING; its content is decoded only for extensions we
 * handle (like Go, we leave unknown ones alone).
 */
export interface Extension {
  readonly oid: string
  readonly critical: boolean
  readonly extnValue: Tlv
}

/**
 * The entries of an `Extensions` SEQUENCE, refusing an OID that appears twice.
 * @throws ERR_DER_MALFORMED
 */
export function readExtensionList(tlv: Tlv | undefined): Extension[] {
  const out: Extension[] = []
  for (const entry of readSequence(tlv)) {
    const fields = readSequence(entry)
    const oid = readOid(fields[0])
    const hasFlag = fields.length === 3
    if (!hasFlag && fields.length !== 2) failDer('Extension has the wrong number of fields')
    const critical = hasFlag ? readBoolean(fields[1]) : false
    const extnValue = expectTag(fields[hasFlag ? 2 : 1], Tag.OCTET_STRING)
    for (const seen of out) if (seen.oid === oid) failDer(`extension ${oid} appears twice`)
    out.push({ oid, critical, extnValue })
  }
  return out
}

/**
 * basicConstraints: `SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL }`.
 * @throws ERR_DER_MALFORMED
 */
export function readBasicConstraints(value: Tlv): { isCa: boolean; pathLen?: number } {
  const fields = readSequence(value)
  let next = 0
  const isCa = fields[next]?.tag === Tag.BOOLEAN ? readBoolean(fields[next++]) : false
  const pathLen =
    fields[next]?.tag === Tag.INTEGER ? readSmallInteger(fields[next++], 0x7fff_ffff) : undefined
  if (next !== fields.length) failDer('basicConstraints has unexpected fields')
  return pathLen === undefined ? { isCa } : { isCa, pathLen }
}

/**
 * keyUsage: the numbers of the bits that are set (bit 0 is digitalSignature).
 * @throws ERR_DER_MALFORMED
 */
export function readKeyUsageBits(value: Tlv): Set<number> {
  const { bytes, unusedBits } = readBitString(value)
  const bits = new Set<number>()
  const count = bytes.length * 8 - unusedBits
  for (let bit = 0; bit < count; bit++) {
    if (bytes[bit >> 3]! & (0x80 >> (bit & 7))) bits.add(bit)
  }
  return bits
}

/**
 * extKeyUsage: the purpose OIDs, dotted, in order.
 * @throws ERR_DER_MALFORMED
 */
export function readExtKeyUsage(value: Tlv): string[] {
  return readSequence(value).map(readOid)
}

/** GeneralName tags (context-specific, primitive) that carry IA5 text or an address. */
const GeneralNameTag = { rfc822Name: 0x81, dnsName: 0x82, uri: 0x86, ipAddress: 0x87 } as const

/**
 * subjectAltName: the URI and DNS names, in order. Other GeneralName kinds are skipped, but
 * rfc822/DNS/URI names must be IA5, URIs must pass Go's checks and IP addresses be 4 or 16 octets.
 * @throws ERR_DER_MALFORMED
 */
export function readSubjectAltName(value: Tlv): { uriSans: string[]; dnsSans: string[] } {
  const uriSans: string[] = []
  const dnsSans: string[] = []
  for (const name of readSequence(value)) {
    switch (name.tag) {
      case GeneralNameTag.uri: {
        const uri = readIa5String(name, name.tag)
        const problem = findUriSanProblem(uri)
        if (problem) failDer(problem)
        uriSans.push(uri)
        break
      }
      case GeneralNameTag.dnsName:
        dnsSans.push(readIa5String(name, name.tag))
        break
      case GeneralNameTag.rfc822Name:
        readIa5String(name, name.tag)
        break
      case GeneralNameTag.ipAddress: {
        const length = name.end - name.contentStart
        if (length !== 4 && length !== 16) failDer('IP address SAN is not 4 or 16 octets')
        break
      }
    }
  }
  return { uriSans, dnsSans }
}

/**
 * subjectKeyIdentifier: the key identifier octets.
 * @throws ERR_DER_MALFORMED
 */
export function readSubjectKeyId(value: Tlv): Buffer {
  return readOctetString(value)
}

/** authorityKeyIdentifier fields: `[0]` keyIdentifier, `[1]` issuer names, `[2]` issuer serial. */
const AkiTag = { keyIdentifier: 0x80, issuer: 0xa1, serial: 0x82 } as const

/**
 * authorityKeyIdentifier: the keyIdentifier, if present.
 * @throws ERR_DER_MALFORMED
 */
export function readAuthorityKeyId(value: Tlv): Buffer | undefined {
  let keyId: Buffer | undefined
  for (const field of readSequence(value)) {
    if (field.tag === AkiTag.keyIdentifier) keyId = readOctetString(field, AkiTag.keyIdentifier)
    else if (field.tag !== AkiTag.issuer && field.tag !== AkiTag.serial) {
      failDer('authorityKeyIdentifier has an unknown field')
    }
  }
  return keyId
}

/** The certificate fields that come from extensions (see `Certificate` for their meaning). */
export interface CertificateExtensions {
  basicConstraints: { isCa: boolean; pathLen?: number; critical: boolean } | undefined
  keyUsage: { bits: Set<number>; critical: boolean } | undefined
  extKeyUsage: string[] | undefined
  uriSans: string[]
  dnsSans: string[]
  subjectKeyId: Buffer | undefined
  authorityKeyId: Buffer | undefined
  /** Critical extensions not decoded here. */
  unhandledCriticalExtensions: string[]
}

type Decoder = (value: Tlv, critical: boolean, out: CertificateExtensions) => void

/** The extensions a certificate parser handles; a critical one not listed here is "unhandled". */
const CERTIFICATE_DECODERS: ReadonlyMap<string, Decoder> = new Map<string, Decoder>([
  [
    Oid.basicConstraints,
    (value, critical, out) => (out.basicConstraints = { ...readBasicConstraints(value), critical }),
  ],
  [Oid.keyUsage, (value, critical, out) => (out.keyUsage = { bits: readKeyUsageBits(value), critical })],
  [Oid.extKeyUsage, (value, _critical, out) => (out.extKeyUsage = readExtKeyUsage(value))],
  [
    Oid.subjectAltName,
    (value, _critical, out) => ({ uriSans: out.uriSans, dnsSans: out.dnsSans } = readSubjectAltName(value)),
  ],
  [Oid.subjectKeyIdentifier, (value, _critical, out) => (out.subjectKeyId = readSubjectKeyId(value))],
  [
    Oid.authorityKeyIdentifier,
    (value, critical, out) => {
      if (critical) failDer('authorityKeyIdentifier must not be critical')
      out.authorityKeyId = readAuthorityKeyId(value)
    },
  ],
])

/**
 * Decodes the extensions a certificate parser handles, refusing a critical authorityKeyIdentifier
 * (Go refuses it) and listing every other critical extension it does not handle (nameConstraints
 * among them, on purpose).
 * @throws ERR_DER_MALFORMED
 */
export function decodeCertificateExtensions(list: ReadonlyArray<Extension>): CertificateExtensions {
  const out: CertificateExtensions = {
    basicConstraints: undefined,
    keyUsage: undefined,
    extKeyUsage: undefined,
    uriSans: [],
    dnsSans: [],
    subjectKeyId: undefined,
    authorityKeyId: undefined,
    unhandledCriticalExtensions: [],
  }
  for (const { oid, critical, extnValue } of list) {
    const decode = CERTIFICATE_DECODERS.get(oid)
    if (decode) decode(readEncapsulated(extnValue), critical, out)
    else if (critical) out.unhandledCriticalExtensions.push(oid)
  }
  return out
}
