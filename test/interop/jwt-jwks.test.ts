import { createLocalJWKSet, jwtVerify } from 'jose'
import { beforeAll, describe, expect, it } from 'vitest'
import { BundleSet } from '../../lib/core/bundle/bundle-source.js'
import { JwtBundle } from '../../lib/core/bundle/jwt-bundle.js'
import { isIdentityError } from '../../lib/core/errors.js'
import { mintJwtSvid } from '../../lib/core/jwt/jwt-svid-mint.js'
import { validateJwtSvid } from '../../lib/core/jwt/jwt-svid-validate.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import { TrustDomain } from '../../lib/core/trust-domain.js'
import { createGeneration, type KeyGeneration } from '../../server/ca/key-generation.js'

const td = TrustDomain.parse('example.org')
const id = SpiffeId.parse('spiffe://example.org/agent/claude')
const MIN = 60_000

describe('JWT-SVIDs from the CA validate with the published JWKS', () => {
  let gen: KeyGeneration
  let jwks: string
  let now: number

  beforeAll(async () => {
    now = Date.now()
    gen = await createGeneration({ trustDomain: td, nowMs: now, ttlMs: 24 * 60 * MIN, state: 'active' })
    // What the Workload API serves: a plain JWKS of the trust domain's JWT keys.
    jwks = JwtBundle.fromAuthorities(td, [{ kid: gen.jwtKey.kid, key: gen.jwtKey.privateKey }]).marshal()
  })

  function mint(audience: string[], nowMs = now, ttlMs = 5 * MIN) {
    return mintJwtSvid({
      id,
      audience,
      key: { kid: gen.jwtKey.kid, privateKey: gen.jwtKey.privateKey },
      nowMs,
      ttlMs,
    })
  }

  it('an independent JOSE verifier (jose with the JWKS document) accepts the token', async () => {
    const token = await mint(['tool-a', 'tool-b'])
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(JSON.parse(jwks)), {
      audience: 'tool-a',
      algorithms: ['ES256'],
    })
    expect(protectedHeader).toEqual({ alg: 'ES256', kid: gen.jwtKey.kid, typ: 'JWT' })
    expect(payload.sub).toBe(id.toString())
    expect(payload.aud).toEqual(['tool-a', 'tool-b'])
    expect(Number.isInteger(payload.exp)).toBe(true)
    expect(Number.isInteger(payload.iat)).toBe(true)
  })

  it('our validator accepts it from the parsed JWKS and refuses tampering, expiry and other audiences', async () => {
    const bundles = BundleSet.of({ jwt: [JwtBundle.parse(td, jwks)] })
    const token = await mint(['tool-a'])
    expect((await validateJwtSvid(token, bundles, 'tool-a', { nowMs: now })).id.equals(id)).toBe(true)
    const [h, p, s] = token.split('.')
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p as string, 'base64url').toString()), sub: 'spiffe://example.org/admin' })).toString('base64url')}.${s}`
    const cases: Array<[() => Promise<unknown>, string]> = [
      [() => validateJwtSvid(forged, bundles, 'tool-a', { nowMs: now }), 'ERR_JWT_SIGNATURE_INVALID'],
      [() => validateJwtSvid(token, bundles, 'tool-a', { nowMs: now + 10 * MIN }), 'ERR_JWT_EXPIRED'],
      [() => validateJwtSvid(token, bundles, 'tool-b', { nowMs: now }), 'ERR_JWT_AUDIENCE_MISMATCH'],
      [() => validateJwtSvid(token, BundleSet.empty(), 'tool-a', { nowMs: now }), 'ERR_BUNDLE_NOT_FOUND'],
    ]
    for (const [attempt, code] of cases)
      await expect(attempt()).rejects.toSatisfy((e) => isIdentityError(e, code as never))
  })
})
