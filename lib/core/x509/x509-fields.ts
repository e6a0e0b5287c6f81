/**
 * Structures shared by certificates and certification requests: AlgorithmIdentifier, Name and
 * SubjectPublicKeyInfo. Structural problems throw `ERR_DER_MALFORMED`; callers re-label them.
 */
import { createPublicKey, type JsonWebKeyInput, type KeyObject, type PublicKeyInput } from 'node:crypto'
import {
  failDer,
  rawOf,
  readOctetAlignedBitString,
  readOid,
  readOne,
  readSequence,
  type Tlv,
  withErrorCode,
} from '../der/der-reader.js'
import { Tag } from '../der/der-writer.js'
import { Oid } from '../der/oid.js'
import type { ErrorCode } from '../errors.js'

/**
 * The dotted OID of an AlgorithmIdentifier (`SEQUENCE { algorithm, parameters OPTIONAL }`).
 * @throws ERR_DER_MALFORMED
 */
export function readAlgorithmOid(tlv: Tlv | undefined): string {
  const fields = readSequence(tlv)
  if (fields.length > 2) failDer('AlgorithmIdentifier has extra fields')
  return readOid(fields[0])
}

/**
 * Checks the shape of a Name (SEQUENCE OF non-empty SET OF `SEQUENCE { type, value }`) and returns its raw DER.
 * Attribute values are not decoded: names are compared byte for byte.
 * @throws ERR_DER_MALFORMED
 */
export function readName(tlv: Tlv | undefined): Buffer {
  const rdns = readSequence(tlv)
  for (const rdn of rdns) {
    const attributes = readSequence(rdn, Tag.SET)
    if (attributes.length === 0) failDer('Name has an empty RelativeDistinguishedName')
    for (const attribute of attributes) {
      const fields = readSequence(attribute)
      if (fields.length !== 2) failDer('Name attribute is not a type and a value')
      readOid(fields[0])
    }
  }
  return rawOf(tlv!)
}

/**
 * Checks the shape of a SubjectPublicKeyInfo and returns its raw DER. The key itself is checked
 * only when a KeyObject is made from it.
 * @throws ERR_DER_MALFORMED
 */
export function readSpki(tlv: Tlv | undefined): Buffer {
  const fields = readSequence(tlv)
  if (fields.length !== 2) failDer('SubjectPublicKeyInfo is not an algorithm and a key')
  readAlgorithmOid(fields[0])
  readOctetAlignedBitString(fields[1])
  return rawOf(tlv!)
}

/** JWK curve name and coordinate size of each named curve whose keys are imported through JWK. */
const JWK_CURVES: ReadonlyMap<string, { crv: string; size: number }> = new Map([
  [Oid.prime256v1, { crv: 'P-256', size: 32 }],
  [Oid.secp384r1, { crv: 'P-384', size: 48 }],
  [Oid.secp521r1, { crv: 'P-521', size: 66 }],
])
const NULL_PARAMETERS = Buffer.from([Tag.NULL, 0])

/**
 * The cheapest node:crypto input for an SPKI: OpenSSL 3 decodes SPKI DER slowly (~110 µs here), while
 * an RSA key imported as PKCS#1 takes ~5 µs and an uncompressed EC point as JWK ~75 µs. Other keys
 * go in as SPKI.
 */
function keyInputFor(spkiDer: Buffer): PublicKeyInput | JsonWebKeyInput {
  const [algorithm, key] = readSequence(readOne(spkiDer))
  const [algorithmOid, parameters] = readSequence(algorithm)
  const oid = readOid(algorithmOid)
  const point = readOctetAlignedBitString(key)
  if (oid === Oid.rsaEncryption && parameters !== undefined && rawOf(parameters).equals(NULL_PARAMETERS)) {
    return { key: point, format: 'der', type: 'pkcs1' }
  }
  const curve =
    oid === Oid.ecPublicKey && parameters?.tag === Tag.OID ? JWK_CURVES.get(readOid(parameters)) : undefined
  if (curve === undefined || point.length !== 1 + 2 * curve.size || point[0] !== 4) {
    return { key: spkiDer, format: 'der', type: 'spki' }
  }
  const x = point.toString('base64url', 1, 1 + curve.size)
  const y = point.toString('base64url', 1 + curve.size)
  return { key: { kty: 'EC', crv: curve.crv, x, y }, format: 'jwk' }
}

/**
 * A public KeyObject from SubjectPublicKeyInfo DER; DER and node:crypto failures become `code`.
 * @throws the given code when the SPKI is malformed or node:crypto refuses the key
 */
export function createSpkiKey(spkiDer: Buffer, code: ErrorCode): KeyObject {
  return withErrorCode(code, 'public key is malformed or unsupported', () =>
    createPublicKey(keyInputFor(spkiDer)),
  )
}
