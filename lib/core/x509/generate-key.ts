import { generateKeyPair, type KeyObject } from 'node:crypto'
import { IdentityError } from '../errors.js'

/**
 * Generates a fresh EC P-256 private key off the event loop. The async API also avoids the Node 20
 * deadlock of `generateKeyPairSync('ec')` followed by a JWK export (DESIGN §5).
 * @throws ERR_KEY_MALFORMED when node:crypto fails
 */
export function generateP256PrivateKey(): Promise<KeyObject> {
  return new Promise((resolve, reject) => {
    generateKeyPair('ec', { namedCurve: 'P-256' }, (err, _pub, priv) =>
      err
        ? reject(new IdentityError('ERR_KEY_MALFORMED', 'key generation failed', { cause: err }))
        : resolve(priv),
    )
  })
}
