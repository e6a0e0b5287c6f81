/**
 * Private keys as go-spiffe expects them: unencrypted PKCS#8 DER, EC P-256/P-384 or RSA.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import {
  asBuffer,
  failDer,
  readOctetString,
  readOid,
  readOne,
  readSequence,
  readSmallInteger,
  withErrorCode,
} from '../der/der-reader.js'
import { Oid } from '../der/oid.js'
import { IdentityError } from '../errors.js'
import type { Certificate } from './certificate.js'

const SUPPORTED_CURVES: ReadonlySet<string> = new Set([Oid.prime256v1, Oid.secp384r1])

/**
 * Checks the PrivateKeyInfo shape and algorithm before node:crypto sees the key, so SEC1, PKCS#1,
 * encrypted PKCS#8 and unsupported algorithms are refused whatever OpenSSL would accept.
 */
function checkPrivateKeyInfo(der: Uint8Array): void {
  const fields = readSequence(readOne(der))
  readSmallInteger(fields[0], 1)
  const algorithm = readSequence(fields[1])
  const algorithmOid = readOid(algorithm[0])
  readOctetString(fields[2])
  if (algorithmOid === Oid.ecPublicKey) {
    if (!SUPPORTED_CURVES.has(readOid(algorithm[1]))) failDer('EC private key is not on P-256 or P-384')
  } else if (algorithmOid !== Oid.rsaEncryption) {
    failDer('private key algorithm is not EC or RSA')
  }
}

/**
 * Parses an unencrypted PKCS#8 DER private key (EC P-256, EC P-384 or RSA). SEC1 and PKCS#1 keys
 * are refused, as go-spiffe refuses them.
 * @throws ERR_KEY_MALFORMED
 */
export function parsePrivateKey(der: Uint8Array): KeyObject {
  return withErrorCode('ERR_KEY_MALFORMED', 'private key is not a supported unencrypted PKCS#8 key', () => {
    checkPrivateKeyInfo(der)
    return createPrivateKey({ key: asBuffer(der), format: 'der', type: 'pkcs8' })
  })
}

/**
 * The unencrypted PKCS#8 DER encoding of a private key.
 * @throws ERR_KEY_MALFORMED when `key` is not a private key
 */
export function exportPkcs8Der(key: KeyObject): Buffer {
  if (key.type !== 'private') throw new IdentityError('ERR_KEY_MALFORMED', 'key is not a private key')
  return withErrorCode('ERR_KEY_MALFORMED', 'private key cannot be exported as PKCS#8', () =>
    key.export({ format: 'der', type: 'pkcs8' }),
  )
}

/**
 * The SubjectPublicKeyInfo DER of a private or public key.
 * @throws ERR_KEY_MALFORMED when `key` is a secret key
 */
export function publicKeyDer(key: KeyObject): Buffer {
  return withErrorCode('ERR_KEY_MALFORMED', 'key has no public half', () =>
    (key.type === 'public' ? key : createPublicKey(key)).export({ format: 'der', type: 'spki' }),
  )
}

/** True when `privateKey` is the private half of the certificate's public key. Never throws. */
export function keyMatchesCertificate(privateKey: KeyObject, cert: Certificate): boolean {
  if (privateKey.type !== 'private') return false
  try {
    return publicKeyDer(privateKey).equals(cert.spkiDer) || createPublicKey(privateKey).equals(cert.publicKey)
  } catch {
    return false
  }
}
