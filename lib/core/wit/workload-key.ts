import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import { exportPublicJwk } from '../bundle/jwk.js'
import { IdentityError } from '../errors.js'
import type { JwtSvidAlgorithm } from '../jwt/jwt-svid.js'
import { firstAlgorithm } from './wit-svid.js'

/** A workload's WIT key: the private key a WIT's `cnf.jwk` names, and its algorithm. */
export interface WitKey {
  readonly privateKey: KeyObject
  readonly alg: JwtSvidAlgorithm
}

/**
 * The private JWK (JSON text) the Workload API hands a workload in `wit_svid_key`: `kty`, `crv`,
 * `x`, `y`, `d` and `alg`, for an EC key. Built from the SEC1 DER, never with `export({format:'jwk'})`:
 * that call hung the agent on Node 20 (the deadlock of DESIGN §5).
 * @throws ERR_KEY_MALFORMED
 */
export function exportWitKeyJwk(privateKey: KeyObject): string {
  if (privateKey?.type !== 'private' || privateKey.asymmetricKeyType !== 'ec')
    throw new IdentityError('ERR_KEY_MALFORMED', 'a private EC key is required')
  const alg = firstAlgorithm(privateKey)
  const pub = exportPublicJwk(privateKey) as Readonly<Record<string, string>>
  const size = Buffer.from(pub['x'] ?? '', 'base64url').length
  const d = privateScalar(privateKey.export({ type: 'sec1', format: 'der' }), size)
  return JSON.stringify({ ...pub, d: d.toString('base64url'), alg })
}

/** The private scalar of a SEC1 ECPrivateKey (RFC 5915): SEQUENCE { INTEGER 1, OCTET STRING d, … }. */
function privateScalar(der: Buffer, size: number): Buffer {
  const first = der[1] ?? 0
  let i = 1 + (first & 0x80 ? 1 + (first & 0x7f) : 1)
  if (der[0] !== 0x30 || der[i] !== 0x02 || der[i + 1] !== 0x01 || der[i + 2] !== 0x01)
    throw new IdentityError('ERR_KEY_MALFORMED', 'not a SEC1 EC private key')
  i += 3
  const length = der[i + 1] ?? 0
  if (der[i] !== 0x04 || length === 0 || length > size)
    throw new IdentityError('ERR_KEY_MALFORMED', 'not a SEC1 EC private key')
  const d = der.subarray(i + 2, i + 2 + length)
  return d.length === size ? d : Buffer.concat([Buffer.alloc(size - d.length), d])
}

/**
 * Reads `wit_svid_key` (a private JWK in JSON). Its `alg`, when present, must fit the key.
 * @throws ERR_KEY_MALFORMED
 */
export function importWitKeyJwk(json: string): WitKey {
  let jwk: Record<string, unknown>
  try {
    jwk = JSON.parse(json) as Record<string, unknown>
  } catch (err) {
    throw new IdentityError('ERR_KEY_MALFORMED', 'the WIT key is not JSON', { cause: err })
  }
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey({ key: jwk as never, format: 'jwk' })
  } catch (err) {
    throw new IdentityError('ERR_KEY_MALFORMED', 'the WIT key is not a private JWK', { cause: err })
  }
  const alg = firstAlgorithm(privateKey)
  if (jwk['alg'] !== undefined && jwk['alg'] !== alg)
    throw new IdentityError('ERR_KEY_MALFORMED', `the WIT key's alg ${String(jwk['alg'])} does not fit it`)
  return { privateKey, alg }
}

/** True when `privateKey` is the private half of `publicKey`. */
export function isKeyPair(privateKey: KeyObject, publicKey: KeyObject): boolean {
  return createPublicKey(privateKey).equals(publicKey)
}
