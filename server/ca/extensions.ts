import { createHash } from 'node:crypto'
import {
  boolean,
  constructed,
  implicitPrimitive,
  namedBits,
  octetString,
  oid,
  sequence,
  smallInteger,
} from '../../lib/core/der/der-writer.js'
import { KeyUsageBit } from '../../lib/core/x509/certificate.js'

const EXT = {
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
} as const

const EKU_SERVER_AUTH = '1.3.6.1.5.5.7.3.1'
const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2'

/** One Extension: `SEQUENCE { extnID, critical DEFAULT FALSE, extnValue OCTET STRING }`. */
export function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical
    ? sequence(oid(id), boolean(true), octetString(value))
    : sequence(oid(id), octetString(value))
}

/** basicConstraints, always critical. `cA` FALSE is the DER default and so is omitted. */
export function basicConstraints(isCa: boolean, pathLen?: number): Buffer {
  const parts: Buffer[] = []
  if (isCa) parts.push(boolean(true))
  if (isCa && pathLen !== undefined) parts.push(smallInteger(pathLen))
  return extension(EXT.basicConstraints, true, sequence(...parts))
}

/** keyUsage, always critical (spec §4). */
export function keyUsage(bits: ReadonlyArray<number>): Buffer {
  return extension(EXT.keyUsage, true, namedBits(bits))
}

/** The leaf keyUsage SPIRE issues: digitalSignature, keyEncipherment, keyAgreement. */
export const LEAF_KEY_USAGE = [
  KeyUsageBit.digitalSignature,
  KeyUsageBit.keyEncipherment,
  KeyUsageBit.keyAgreement,
]
/** The CA keyUsage: keyCertSign and cRLSign. */
export const CA_KEY_USAGE = [KeyUsageBit.keyCertSign, KeyUsageBit.cRLSign]

/** extKeyUsage serverAuth + clientAuth, not critical. */
export function serverAndClientAuth(): Buffer {
  return extension(EXT.extKeyUsage, false, sequence(oid(EKU_SERVER_AUTH), oid(EKU_CLIENT_AUTH)))
}

/**
 * subjectAltName with URIs first, then DNS names. Critical only when the subject is empty (RFC 5280 §4.2.1.6).
 */
export function subjectAltName(
  uris: ReadonlyArray<string>,
  dnsNames: ReadonlyArray<string>,
  critical: boolean,
): Buffer {
  const names = [
    ...uris.map((u) => implicitPrimitive(6, Buffer.from(u, 'latin1'))),
    ...dnsNames.map((d) => implicitPrimitive(2, Buffer.from(d, 'latin1'))),
  ]
  return extension(EXT.subjectAltName, critical, constructed(0x30, names))
}

/** subjectKeyIdentifier: SHA-1 of the subjectPublicKey BIT STRING value (RFC 5280 §4.2.1.2 method 1). */
export function keyIdentifierOf(spkiDer: Buffer): Buffer {
  return createHash('sha1').update(subjectPublicKeyBits(spkiDer)).digest()
}

export function subjectKeyIdentifier(keyId: Buffer): Buffer {
  return extension(EXT.subjectKeyIdentifier, false, octetString(keyId))
}

/** authorityKeyIdentifier with only `[0] keyIdentifier`; never critical (Go refuses a critical one). */
export function authorityKeyIdentifier(keyId: Buffer): Buffer {
  return extension(EXT.authorityKeyIdentifier, false, sequence(implicitPrimitive(0, keyId)))
}

/**
 * The bytes of the subjectPublicKey BIT STRING (after the unused-bits octet) inside an SPKI.
 * SPKI = SEQUENCE { AlgorithmIdentifier, BIT STRING }; the BIT STRING is the last element.
 */
function subjectPublicKeyBits(spkiDer: Buffer): Buffer {
  let offset = headerLength(spkiDer, 0)
  offset += headerLength(spkiDer, offset) + contentLength(spkiDer, offset) // skip AlgorithmIdentifier
  const bitsHeader = headerLength(spkiDer, offset)
  return spkiDer.subarray(offset + bitsHeader + 1, offset + bitsHeader + contentLength(spkiDer, offset))
}

function headerLength(buf: Buffer, offset: number): number {
  const first = buf[offset + 1] ?? 0
  return first < 0x80 ? 2 : 2 + (first & 0x7f)
}

function contentLength(buf: Buffer, offset: number): number {
  const first = buf[offset + 1] ?? 0
  if (first < 0x80) return first
  let len = 0
  for (let i = 0; i < (first & 0x7f); i++) len = len * 256 + (buf[offset + 2 + i] ?? 0)
  return len
}
