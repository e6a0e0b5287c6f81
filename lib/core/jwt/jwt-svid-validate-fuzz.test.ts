import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { validateJwtSvid } from './jwt-svid-validate.js'
import {
  b64,
  craft,
  goodClaims,
  goodHeader,
  makeTestKeys,
  NOW,
  rejectionCode,
  type TestKeys,
} from './test-tokens.js'

const codes = [
  'ERR_JWT_MALFORMED',
  'ERR_JWT_ALG_UNSUPPORTED',
  'ERR_JWT_INVALID',
  'ERR_BUNDLE_NOT_FOUND',
  'ERR_JWT_KEY_NOT_FOUND',
  'ERR_JWT_SIGNATURE_INVALID',
  'ERR_JWT_AUDIENCE_MISMATCH',
  'ERR_JWT_EXPIRED',
  'ERR_JWT_NOT_YET_VALID',
]

let keys: TestKeys
beforeAll(async () => {
  keys = await makeTestKeys()
})

async function expectValueOrCode(token: string): Promise<void> {
  const code = await rejectionCode(validateJwtSvid(token, keys.bundles, 'svc', { nowMs: NOW }))
  if (code !== undefined) expect(codes).toContain(code)
}

describe('validateJwtSvid under fuzzing', () => {
  it('gives a value or an IdentityError for any string or JSON parts', async () => {
    const algs = fc.constantFrom('ES256', 'RS256', 'none', 'HS256', 'PS512')
    const headers = fc.oneof(
      fc.jsonValue(),
      fc.record(
        { alg: algs, kid: fc.constantFrom('ec', 'rsa', 'x'), typ: fc.jsonValue() },
        { requiredKeys: ['alg'] },
      ),
    )
    const sub = fc.oneof(fc.string(), fc.constant(goodClaims.sub))
    const claimSets = fc.oneof(
      fc.jsonValue(),
      fc.record(
        { sub, aud: fc.jsonValue(), exp: fc.jsonValue(), nbf: fc.jsonValue(), iat: fc.jsonValue() },
        { requiredKeys: [] },
      ),
    )
    const tokens = fc.oneof(
      fc.string(),
      fc.tuple(headers, claimSets, fc.base64String()).map(([h, c, s]) => `${b64(h)}.${b64(c)}.${s}`),
    )
    await fc.assert(fc.asyncProperty(tokens, expectValueOrCode), { numRuns: 300 })
  })

  it('gives a value or an IdentityError for signed tokens with arbitrary claims', async () => {
    const claims = fc.record({ sub: fc.constant(goodClaims.sub), aud: fc.jsonValue(), exp: fc.jsonValue() })
    await fc.assert(
      fc.asyncProperty(claims, (c) => expectValueOrCode(craft(goodHeader, c, keys.ec))),
      { numRuns: 100 },
    )
  })

  it('gives a value or an IdentityError for any one-character change of a valid token', async () => {
    const token = craft(goodHeader, goodClaims, keys.ec)
    const chars = 'ABCabc012-_.=+/ '
    await fc.assert(
      fc.asyncProperty(fc.nat(token.length - 1), fc.nat(chars.length - 1), async (at, c) => {
        await expectValueOrCode(token.slice(0, at) + chars[c] + token.slice(at + 1))
      }),
      { numRuns: 200 },
    )
  })
})
