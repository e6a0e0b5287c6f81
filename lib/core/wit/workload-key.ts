import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import { IdentityError } from '../errors.js'
import type { JwtSvidAlgorithm } from '../jwt/jwt-svid.js'
import { firstAlgorithm } from './wit-svid.js'

/** A workload's WIT key: the private key a WIT's `cnf.jwk` names, and its algorithm. */
export interface WitKey {
  readonly privateKey: KeyObject
  readonly alg: JwtSvidAlgorithm
}

/**
 * The private JWK (JSON text) the Workload API hands a workload in `wit_svid_key`: the key members,
 * `d` and `alg`. Only for a key made with the async `generateKeyPair` (DESIGN §5).
 * @throws ERR_KEY_MALFORMED
 */
export function exportWitKeyJwk(privateKey: KeyObject): string {
  if (privateKey?.type !== 'private')
    throw new IdentityError('ERR_KEY_MALFORMED', 'a private key is required')
  const alg = firstAlgorithm(privateKey)
  return JSON.stringify({ ...privateKey.export({ format: 'jwk' }), alg })
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
