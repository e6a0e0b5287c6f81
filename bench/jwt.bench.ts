import { CompactSign, compactVerify, importJWK } from 'jose'
import { BundleSet } from '../lib/core/bundle/bundle-source.js'
import { JwtBundle } from '../lib/core/bundle/jwt-bundle.js'
import { mintJwtSvid } from '../lib/core/jwt/jwt-svid-mint.js'
import { validateJwtSvid } from '../lib/core/jwt/jwt-svid-validate.js'
import { SpiffeId } from '../lib/core/spiffe-id.js'
import { TrustDomain } from '../lib/core/trust-domain.js'
import { generateP256Key, newKeyId } from '../server/ca/key-generation.js'
import { type BenchResult, compare, measureAsync } from './harness.js'

/**
 * JWT-SVIDs minted and validated on one core, each beside the raw jose ES256 sign / verify of a token
 * of the same shape, measured in the same run. DESIGN §8: minting ≥ 0.5 of raw.
 */
export async function benchJwt(): Promise<BenchResult[]> {
  const td = TrustDomain.parse('bench.example')
  const id = SpiffeId.parse('spiffe://bench.example/ns/prod/sa/web')
  const privateKey = await generateP256Key()
  const kid = newKeyId()
  const bundle = JwtBundle.fromAuthorities(td, [{ kid, key: privateKey }])
  const bundles = BundleSet.of({ jwt: [bundle] })
  const nowMs = Date.now()
  const mint = () => mintJwtSvid({ id, audience: ['tool'], key: { kid, privateKey }, nowMs, ttlMs: 300_000 })
  const token = await mint()

  const jwk = privateKey.export({ format: 'jwk' })
  const joseKey = await importJWK({ ...jwk, alg: 'ES256' }, 'ES256')
  const { d: _d, ...publicJwk } = jwk
  const josePublic = await importJWK({ ...publicJwk, alg: 'ES256' }, 'ES256')
  const payload = new TextEncoder().encode(
    token.split('.')[1] ? Buffer.from(token.split('.')[1] as string, 'base64url').toString() : '{}',
  )
  const rawSign = () =>
    new CompactSign(payload).setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' }).sign(joseKey)
  const rawVerify = () => compactVerify(token, josePublic)

  const rawSignRate = await measureAsync(rawSign)
  const mintRate = await measureAsync(mint)
  const rawVerifyRate = await measureAsync(rawVerify)
  const validateRate = await measureAsync(() => validateJwtSvid(token, bundles, 'tool', { nowMs }))
  return [
    compare('server: JWT-SVIDs minted vs raw jose ES256 sign', mintRate, rawSignRate, 0.5),
    compare('lib: JWT-SVIDs validated vs raw jose ES256 verify', validateRate, rawVerifyRate),
  ]
}
