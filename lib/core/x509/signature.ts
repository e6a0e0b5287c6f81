/**
 * Signature verification for certificates and certification requests: ECDSA and RSA PKCS#1 v1.5
 * with SHA-256/384/512. Anything else verifies as false.
 */
import { constants, type KeyObject, verify } from 'node:crypto'
import { Oid } from '../der/oid.js'
import type { Certificate } from './certificate.js'

/** The digest and key type each supported signature algorithm needs. */
const SIGNATURE_ALGORITHMS: ReadonlyMap<string, { hash: string; keyType: 'ec' | 'rsa' }> = new Map([
  [Oid.ecdsaWithSha256, { hash: 'sha256', keyType: 'ec' }],
  [Oid.ecdsaWithSha384, { hash: 'sha384', keyType: 'ec' }],
  [Oid.ecdsaWithSha512, { hash: 'sha512', keyType: 'ec' }],
  [Oid.sha256WithRsaEncryption, { hash: 'sha256', keyType: 'rsa' }],
  [Oid.sha384WithRsaEncryption, { hash: 'sha384', keyType: 'rsa' }],
  [Oid.sha512WithRsaEncryption, { hash: 'sha512', keyType: 'rsa' }],
])

/**
 * True when `signature` over `data` verifies with `publicKey` under the dotted `algorithmOid`.
 * The key type must fit the algorithm (an EC key never verifies an RSA algorithm and vice versa);
 * an unsupported algorithm or a malformed signature gives false. Never throws.
 */
export function verifySignature(
  algorithmOid: string,
  publicKey: KeyObject,
  data: Uint8Array,
  signature: Uint8Array,
): boolean {
  const algorithm = SIGNATURE_ALGORITHMS.get(algorithmOid)
  if (!algorithm || publicKey.asymmetricKeyType !== algorithm.keyType) return false
  try {
    if (algorithm.keyType === 'ec') {
      return verify(algorithm.hash, data, { key: publicKey, dsaEncoding: 'der' }, signature)
    }
    return verify(algorithm.hash, data, { key: publicKey, padding: constants.RSA_PKCS1_PADDING }, signature)
  } catch {
    return false
  }
}

/** True when `cert` is signed by the holder of `issuerPublicKey`. Never throws. */
export function verifyCertificateSignature(cert: Certificate, issuerPublicKey: KeyObject): boolean {
  return verifySignature(cert.signatureAlgorithm, issuerPublicKey, cert.tbs, cert.signature)
}
