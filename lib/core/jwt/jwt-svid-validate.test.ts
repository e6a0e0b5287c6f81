import { createHmac } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { JwtBundle } from '../bundle/jwt-bundle.js'
import { isIdentityError } from '../errors.js'
import { SpiffeId } from '../spiffe-id.js'
import { TrustDomain } from '../trust-domain.js'
import { mintJwtSvid } from './jwt-svid-mint.js'
import { DEFAULT_JWT_LEEWAY_MS, validateJwtSvid } from './jwt-svid-validate.js'
import {
  b64,
  goodClaims as claims,
  craft,
  goodHeader as header,
  makeTestKeys,
  NOW,
  NOW_S,
  rejectionCode,
  type TestKeys,
} from './test-tokens.js'

let keys: TestKeys
beforeAll(async () => {
  keys = await makeTestKeys()
})

const validate = (token: string, audience: string | string[] = 'svc', nowMs = NOW) =>
  validateJwtSvid(token, keys.bundles, audience, { nowMs })
const good = () => craft(header, claims, keys.ec)

describe('validateJwtSvid accepts', () => {
  it('a minted token, returning the record', async () => {
    const id = SpiffeId.parse('spiffe://example.org/workload')
    const key = { kid: 'ec', privateKey: keys.ec }
    const token = await mintJwtSvid({
      id,
      audience: ['svc', 'b'],
      key,
      nowMs: NOW,
      ttlMs: 60_000,
      jwtId: 'j',
    })
    const svid = await validateJwtSvid(token, keys.bundles, ['x', 'b'], { nowMs: NOW })
    expect(svid.id.equals(id)).toBe(true)
    expect(svid.audience).toEqual(['svc', 'b'])
    expect(svid.expiresAtMs).toBe(NOW + 60_000)
    expect(svid.issuedAtMs).toBe(NOW)
    expect(svid.token).toBe(token)
    expect(svid.claims).toEqual({
      sub: id.toString(),
      aud: ['svc', 'b'],
      exp: NOW_S + 60,
      iat: NOW_S,
      jti: 'j',
    })
    expect(Object.isFrozen(svid.claims)).toBe(true)
  })

  it.each(['RS256', 'RS512', 'PS256', 'PS384'])('%s with an RSA key', async (alg) => {
    expect(await rejectionCode(validate(craft({ alg, kid: 'rsa' }, claims, keys.rsa)))).toBeUndefined()
  })

  it('ES384 with a P-384 key, a string aud, typ JOSE and no iat', async () => {
    const noIat = { ...claims, aud: 'svc', iat: undefined }
    const svid = await validate(craft({ alg: 'ES384', kid: 'p384', typ: 'JOSE' }, noIat, keys.p384))
    expect(svid.audience).toEqual(['svc'])
    expect(svid.issuedAtMs).toBeUndefined()
  })

  it('times within the default leeway of 30 s', async () => {
    expect(DEFAULT_JWT_LEEWAY_MS).toBe(30_000)
    expect(await rejectionCode(validate(good(), 'svc', (NOW_S + 300) * 1000 + 29_000))).toBeUndefined()
    expect(
      await rejectionCode(validate(craft(header, { ...claims, nbf: NOW_S + 29 }, keys.ec))),
    ).toBeUndefined()
    expect(
      await rejectionCode(validate(craft(header, { ...claims, iat: NOW_S + 29 }, keys.ec))),
    ).toBeUndefined()
  })
})

function hmacToken(secret: string): string {
  const input = `${b64({ alg: 'HS256', kid: 'ec', typ: 'JWT' })}.${b64(claims)}`
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`
}

function flipCharAt(token: string, at: number): string {
  return token.slice(0, at) + (token[at] === 'A' ? 'B' : 'A') + token.slice(at + 1)
}

/** Tokens refused for audience `svc` at NOW, grouped by the code they must give. */
const refusals: Record<string, Array<[string, () => string]>> = {
  ERR_JWT_SIGNATURE_INVALID: [
    ['a tampered payload', () => good().replace(/\.[^.]+\./, `.${b64({ ...claims, exp: NOW_S + 9999 })}.`)],
    ['a tampered signature', () => flipCharAt(good(), good().length - 20)],
    ['an empty signature', () => good().replace(/[^.]+$/, '')],
    ['a signature by another key under the same kid', () => craft(header, claims, keys.otherEc)],
  ],
  ERR_JWT_NOT_YET_VALID: [
    ['nbf in the future', () => craft(header, { ...claims, nbf: NOW_S + 31 }, keys.ec)],
    ['iat in the future', () => craft(header, { ...claims, iat: NOW_S + 31 }, keys.ec)],
  ],
  ERR_JWT_ALG_UNSUPPORTED: [
    ['alg none', () => `${b64({ alg: 'none', kid: 'ec' })}.${b64(claims)}.`],
    ['alg EdDSA', () => `${b64({ alg: 'EdDSA', kid: 'ec' })}.${b64(claims)}.AAAA`],
    [
      'HS256 keyed with the public key PEM',
      () => hmacToken(String(pubOf('ec').export({ type: 'spki', format: 'pem' }))),
    ],
    ['HS256 keyed with the public key JWK', () => hmacToken(JSON.stringify(jwkOf('ec')))],
    ['an RS alg against an EC key', () => craft({ alg: 'RS256', kid: 'ec' }, claims, keys.rsa)],
    ['an ES alg against an RSA key', () => craft({ alg: 'ES256', kid: 'rsa' }, claims, keys.ec)],
    ['ES384 against a P-256 key', () => craft({ alg: 'ES384', kid: 'ec' }, claims, keys.p384)],
  ],
  ERR_JWT_INVALID: [
    ['an empty kid', () => craft({ alg: 'ES256', kid: '' }, claims, keys.ec)],
    ['a crit header', () => craft({ ...header, crit: ['exp'], exp: 1 }, claims, keys.ec)],
    ['a typ other than JWT or JOSE', () => craft({ ...header, typ: 'at+jwt' }, claims, keys.ec)],
    ['a lowercase typ', () => craft({ ...header, typ: 'jwt' }, claims, keys.ec)],
    ['a missing sub', () => craft(header, { ...claims, sub: undefined }, keys.ec)],
    [
      'a sub that is not a SPIFFE ID',
      () => craft(header, { ...claims, sub: 'https://example.org/w' }, keys.ec),
    ],
    ['a missing exp', () => craft(header, { ...claims, exp: undefined }, keys.ec)],
    ['a string exp', () => craft(header, { ...claims, exp: String(NOW_S + 300) }, keys.ec)],
    ['a missing aud', () => craft(header, { ...claims, aud: undefined }, keys.ec)],
    ['an empty aud', () => craft(header, { ...claims, aud: [] }, keys.ec)],
    ['an aud holding an empty string', () => craft(header, { ...claims, aud: ['svc', ''] }, keys.ec)],
  ],
  ERR_JWT_KEY_NOT_FOUND: [
    ['an unknown kid', () => craft({ ...header, kid: 'nope' }, claims, keys.ec)],
    ['a kid of another trust domain', () => craft({ ...header, kid: 'other' }, claims, keys.otherEc)],
  ],
  ERR_BUNDLE_NOT_FOUND: [
    [
      'a sub in a trust domain with no bundle',
      () => craft(header, { ...claims, sub: 'spiffe://unknown.org/w' }, keys.ec),
    ],
  ],
  ERR_JWT_MALFORMED: [
    ['an empty string', () => ''],
    ['one part', () => 'abc'],
    ['two parts', () => 'abc.def'],
    ['four parts', () => 'a.b.c.d'],
    ['five parts (JWE)', () => 'a.b.c.d.e'],
    ['dots only', () => '..'],
    [
      'JSON serialization',
      () => JSON.stringify({ protected: b64(header), payload: b64(claims), signature: 'AA' }),
    ],
    ['a header that is not base64url', () => `${b64(header)}+.${b64(claims)}.AA`],
    ['a header that is not JSON', () => `${b64('not json')}.${b64(claims)}.AA`],
    ['a header that is an array', () => `${b64([header])}.${b64(claims)}.AA`],
    ['a header with bad UTF-8', () => `${Buffer.from([0x7b, 0xff]).toString('base64url')}.${b64(claims)}.AA`],
    ['a header with no alg', () => `${b64({ kid: 'ec' })}.${b64(claims)}.AA`],
    ['claims that are not JSON', () => `${b64(header)}.${b64('{"sub"')}.AA`],
    ['claims that are a string', () => `${b64(header)}.${b64('"x"')}.AA`],
    ['empty claims', () => `${b64(header)}..AA`],
    ['a signature with bad characters', () => `${b64(header)}.${b64(claims)}.A/A=`],
    ['a non-string token', () => 42 as unknown as string],
  ],
}

function pubOf(kid: string) {
  return keys.bundles.getJwtBundleForTrustDomain(TrustDomain.parse('example.org'))!.findAuthority(kid)!.key
}
function jwkOf(kid: string) {
  return keys.bundles.getJwtBundleForTrustDomain(TrustDomain.parse('example.org'))!.findAuthority(kid)!.jwk
}

describe('validateJwtSvid refuses', () => {
  const table = Object.entries(refusals).flatMap(([code, list]) =>
    list.map(([name, make]) => [name, code, make] as const),
  )
  it.each(table)('%s with %s', async (_name, code, make) => {
    expect(await rejectionCode(validate(make()))).toBe(code)
  })

  it('an expired token, with the leeway or without it', async () => {
    const expiry = (NOW_S + 300) * 1000
    expect(await rejectionCode(validate(good(), 'svc', expiry + DEFAULT_JWT_LEEWAY_MS))).toBe(
      'ERR_JWT_EXPIRED',
    )
    const noLeeway = { nowMs: expiry, leewayMs: 0 }
    expect(await rejectionCode(validateJwtSvid(good(), keys.bundles, 'svc', noLeeway))).toBe(
      'ERR_JWT_EXPIRED',
    )
  })

  it('another audience, or none expected', async () => {
    expect(await rejectionCode(validate(good(), ['other', 'svc2']))).toBe('ERR_JWT_AUDIENCE_MISMATCH')
    expect(await rejectionCode(validate(good(), []))).toBe('ERR_JWT_AUDIENCE_MISMATCH')
  })

  it('a bad signature, keeping the jose error as cause', async () => {
    const err = await validate(craft(header, claims, keys.otherEc)).catch((e: unknown) => e)
    expect(isIdentityError(err, 'ERR_JWT_SIGNATURE_INVALID') && err.cause).toBeTruthy()
  })

  it('bad options', async () => {
    const bad = [
      { nowMs: Number.NaN },
      { nowMs: NOW, leewayMs: -1 },
      undefined as unknown as { nowMs: number },
    ]
    for (const opts of bad) {
      expect(await rejectionCode(validateJwtSvid(good(), keys.bundles, 'svc', opts))).toBe('ERR_JWT_INVALID')
    }
  })
})

describe('validateJwtSvid without a kid (JWT-SVID §2.2: kid is optional)', () => {
  const noKid = (alg: string) => ({ alg, typ: 'JWT' })

  it.each([
    ['ES256', () => keys.ec],
    ['RS256', () => keys.rsa],
    ['PS384', () => keys.rsa],
    ['ES384', () => keys.p384],
  ])('accepts %s signed by one of the trust domain authorities', async (alg, key) => {
    const svid = await validate(craft(noKid(alg), claims, key()))
    expect(svid.id.toString()).toBe(claims.sub)
  })

  it.each([
    [
      'a key of another trust domain',
      'ERR_JWT_SIGNATURE_INVALID',
      () => craft(noKid('ES256'), claims, keys.otherEc),
    ],
    [
      'a tampered payload',
      'ERR_JWT_SIGNATURE_INVALID',
      () =>
        craft(noKid('ES256'), claims, keys.ec).replace(
          /\.[^.]+\./,
          `.${b64({ ...claims, exp: NOW_S + 9999 })}.`,
        ),
    ],
    [
      'an alg no authority fits (ES512)',
      'ERR_JWT_ALG_UNSUPPORTED',
      () => `${b64(noKid('ES512'))}.${b64(claims)}.AAAA`,
    ],
    ['alg none', 'ERR_JWT_ALG_UNSUPPORTED', () => `${b64({ alg: 'none' })}.${b64(claims)}.`],
    [
      'an expired token',
      'ERR_JWT_EXPIRED',
      () => craft(noKid('ES256'), { ...claims, exp: NOW_S - 60 }, keys.ec),
    ],
    [
      'nbf in the future',
      'ERR_JWT_NOT_YET_VALID',
      () => craft(noKid('ES256'), { ...claims, nbf: NOW_S + 60 }, keys.ec),
    ],
    ['a missing sub', 'ERR_JWT_INVALID', () => craft(noKid('ES256'), { ...claims, sub: undefined }, keys.ec)],
    [
      'a sub in a trust domain with no bundle',
      'ERR_BUNDLE_NOT_FOUND',
      () => craft(noKid('ES256'), { ...claims, sub: 'spiffe://unknown.org/w' }, keys.ec),
    ],
  ])('refuses %s with %s', async (_name, code, make) => {
    expect(await rejectionCode(validate(make()))).toBe(code)
  })

  it('refuses a token for another audience', async () => {
    const token = craft(noKid('ES256'), claims, keys.ec)
    expect(await rejectionCode(validate(token, 'other'))).toBe('ERR_JWT_AUDIENCE_MISMATCH')
  })

  it('refuses against a bundle with no authority, and still refuses an unknown kid', async () => {
    const empty = { getJwtBundleForTrustDomain: (td: TrustDomain) => JwtBundle.empty(td) }
    const token = craft(noKid('ES256'), claims, keys.ec)
    expect(await rejectionCode(validateJwtSvid(token, empty, 'svc', { nowMs: NOW }))).toBe(
      'ERR_JWT_KEY_NOT_FOUND',
    )
    const unknownKid = craft({ alg: 'ES256', kid: 'nope' }, claims, keys.ec)
    expect(await rejectionCode(validate(unknownKid))).toBe('ERR_JWT_KEY_NOT_FOUND')
  })
})

describe('validateJwtSvid with a failing bundle source', () => {
  it('wraps what the source throws', async () => {
    const broken = {
      getJwtBundleForTrustDomain(): never {
        throw new TypeError('boom')
      },
    }
    const code = await rejectionCode(validateJwtSvid(good(), broken, 'svc', { nowMs: NOW }))
    expect(code).toBe('ERR_BUNDLE_NOT_FOUND')
  })
})
