import { createPublicKey, KeyObject, webcrypto } from 'node:crypto'
import { IdentityError } from '../errors.js'

/** The key kinds SPIFFE issuers and verifiers meet. */
export type PublicKeyKind = 'ec-p256' | 'ec-p384' | 'rsa' | 'other'

/** A public key with its kind, imported from SubjectPublicKeyInfo DER. */
export interface ImportedPublicKey {
  readonly key: KeyObject
  readonly kind: PublicKeyKind
  /** RSA modulus length in bits (0 for other kinds). */
  readonly modulusBits: number
}

// SubjectPublicKeyInfo headers of uncompressed EC points: SEQUENCE { { id-ecPublicKey, curve }, BIT STRING 0x00 ... }.
const EC_CURVES = [
  {
    kind: 'ec-p256',
    namedCurve: 'P-256',
    prefix: Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'),
    pointBytes: 65,
  },
  {
    kind: 'ec-p384',
    namedCurve: 'P-384',
    prefix: Buffer.from('3076301006072a8648ce3d020106052b81040022036200', 'hex'),
    pointBytes: 97,
  },
] as const

/**
 * Imports a public key from SPKI DER. EC P-256 and P-384 keys take a fast path: the uncompressed point is
 * imported as a raw WebCrypto key, which checks that the point is on the curve (sufficient for these
 * prime-order curves) without OpenSSL's full key check, at about half the cost of `createPublicKey`.
 * Other keys go through `createPublicKey`.
 * @throws ERR_KEY_MALFORMED
 */
export async function importSpki(spkiDer: Buffer): Promise<ImportedPublicKey> {
  for (const curve of EC_CURVES) {
    if (
      spkiDer.length === curve.prefix.length + curve.pointBytes &&
      spkiDer.subarray(0, curve.prefix.length).equals(curve.prefix)
    ) {
      try {
        const point = spkiDer.subarray(curve.prefix.length)
        const ck = await webcrypto.subtle.importKey(
          'raw',
          point,
          { name: 'ECDSA', namedCurve: curve.namedCurve },
          true,
          ['verify'],
        )
        return { key: KeyObject.from(ck), kind: curve.kind, modulusBits: 0 }
      } catch (err) {
        throw new IdentityError('ERR_KEY_MALFORMED', 'EC public key is not a point on its curve', {
          cause: err,
        })
      }
    }
  }
  return importGeneric(spkiDer)
}

function importGeneric(spkiDer: Buffer): ImportedPublicKey {
  let key: KeyObject
  try {
    key = createPublicKey({ key: spkiDer, format: 'der', type: 'spki' })
  } catch (err) {
    throw new IdentityError('ERR_KEY_MALFORMED', 'public key is not valid SubjectPublicKeyInfo', {
      cause: err,
    })
  }
  const details = key.asymmetricKeyDetails
  if (key.asymmetricKeyType === 'rsa') return { key, kind: 'rsa', modulusBits: details?.modulusLength ?? 0 }
  if (key.asymmetricKeyType === 'ec' && details?.namedCurve === 'prime256v1')
    return { key, kind: 'ec-p256', modulusBits: 0 }
  if (key.asymmetricKeyType === 'ec' && details?.namedCurve === 'secp384r1')
    return { key, kind: 'ec-p384', modulusBits: 0 }
  return { key, kind: 'other', modulusBits: 0 }
}
