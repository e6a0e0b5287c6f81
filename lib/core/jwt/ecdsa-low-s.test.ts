import { createPublicKey, sign } from 'node:crypto'
import { compactVerify } from 'jose'
import { beforeAll, describe, expect, it } from 'vitest'
import { SpiffeId } from '../spiffe-id.js'
import { flipS, isHighS, toLowS } from './ecdsa-low-s.js'
import { cryptoKeyFor } from './jwt-svid.js'
import { mintJwtSvid } from './jwt-svid-mint.js'
import { validateJwtSvid } from './jwt-svid-validate.js'
import {
  b64,
  goodClaims,
  goodHeader,
  makeTestKeys,
  NOW,
  rejectionCode,
  type TestKeys,
} from './test-tokens.js'

let keys: TestKeys
beforeAll(async () => {
  keys = await makeTestKeys()
})

const signatureOf = (token: string) => Buffer.from(token.split('.')[2] ?? '', 'base64url')

/** A real ES* token signed by node:crypto, as it came out: high-S or low-S at random. */
function rawToken(alg: 'ES256' | 'ES384', kid: string) {
  const input = `${b64({ ...goodHeader, alg, kid })}.${b64(goodClaims)}`
  const key = alg === 'ES256' ? keys.ec : keys.p384
  const s = sign(`sha${alg.slice(2)}`, Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
  return `${input}.${s.toString('base64url')}`
}

describe('high-S (malleated) ECDSA signatures', () => {
  it.each([
    ['ES256', 'ec'],
    ['ES384', 'p384'],
  ] as const)(
    '%s: the n − s twin of a real token verifies under jose, and Tessera refuses it',
    async (alg, kid) => {
      const token = toLowS(alg, rawToken(alg, kid))
      expect(isHighS(alg, signatureOf(token))).toBe(false)
      const twin = flipS(alg, token)
      expect(twin).not.toBe(token)
      expect(isHighS(alg, signatureOf(twin))).toBe(true)
      const verifyKey = await cryptoKeyFor(createPublicKey(alg === 'ES256' ? keys.ec : keys.p384), alg)
      await expect(compactVerify(twin, verifyKey, { algorithms: [alg] })).resolves.toBeDefined()
      const validate = (t: string) => validateJwtSvid(t, keys.bundles, 'svc', { nowMs: NOW })
      expect(await rejectionCode(validate(token))).toBeUndefined()
      expect(await rejectionCode(validate(twin))).toBe('ERR_JWT_SIGNATURE_INVALID')
    },
  )

  it('mintJwtSvid signs only low-S tokens', async () => {
    const id = SpiffeId.parse('spiffe://example.org/workload')
    for (let i = 0; i < 24; i++) {
      const token = await mintJwtSvid({
        id,
        audience: ['svc'],
        key: { kid: 'ec', privateKey: keys.ec },
        nowMs: NOW,
        ttlMs: 60_000,
      })
      expect(isHighS('ES256', signatureOf(token))).toBe(false)
      expect(await rejectionCode(validateJwtSvid(token, keys.bundles, 'svc', { nowMs: NOW }))).toBeUndefined()
    }
  })

  it('other algorithms and wrong lengths are never high-S', () => {
    expect(isHighS('RS256', Buffer.alloc(64, 0xff))).toBe(false)
    expect(isHighS('ES256', Buffer.alloc(63, 0xff))).toBe(false)
    expect(isHighS('ES256', Buffer.alloc(64, 0xff))).toBe(true)
  })
})
