import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isIdentityError } from '../errors.js'
import { parseJwtSvidInsecure } from './jwt-svid.js'

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
const claims = {
  sub: 'spiffe://example.org/w',
  aud: 'svc',
  exp: 1_700_000_300.5,
  iat: 1_700_000_000,
  custom: { a: [1] },
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return isIdentityError(err) ? err.code : `not an IdentityError: ${String(err)}`
  }
  return undefined
}

describe('parseJwtSvidInsecure', () => {
  it('decodes header and claims without checking the signature or times', () => {
    const token = `${b64({ alg: 'PS384', kid: 'k', typ: 'JWT', extra: 1 })}.${b64(claims)}.bm90LWEtc2lnbmF0dXJl`
    const svid = parseJwtSvidInsecure(token)
    expect(svid.header).toEqual({ alg: 'PS384', kid: 'k', typ: 'JWT' })
    expect(svid.id.toString()).toBe('spiffe://example.org/w')
    expect(svid.audience).toEqual(['svc'])
    expect(svid.expiresAtMs).toBe(1_700_000_300_500)
    expect(svid.issuedAtMs).toBe(1_700_000_000_000)
    expect(svid.claims).toEqual(claims)
    expect(svid.token).toBe(token)
    expect(Object.isFrozen((svid.claims['custom'] as { a: number[] }).a)).toBe(true)
  })

  it('accepts a token without kid or typ', () => {
    expect(parseJwtSvidInsecure(`${b64({ alg: 'ES256' })}.${b64(claims)}.`).header).toEqual({ alg: 'ES256' })
  })

  it.each([
    ['not compact', 'abc', 'ERR_JWT_MALFORMED'],
    ['alg none', `${b64({ alg: 'none' })}.${b64(claims)}.`, 'ERR_JWT_ALG_UNSUPPORTED'],
    ['alg HS512', `${b64({ alg: 'HS512' })}.${b64(claims)}.`, 'ERR_JWT_ALG_UNSUPPORTED'],
    ['alg es256', `${b64({ alg: 'es256' })}.${b64(claims)}.`, 'ERR_JWT_ALG_UNSUPPORTED'],
    ['a bad typ', `${b64({ alg: 'ES256', typ: 'JWS' })}.${b64(claims)}.`, 'ERR_JWT_INVALID'],
    ['a crit', `${b64({ alg: 'ES256', crit: [] })}.${b64(claims)}.`, 'ERR_JWT_INVALID'],
    ['a numeric kid', `${b64({ alg: 'ES256', kid: 7 })}.${b64(claims)}.`, 'ERR_JWT_INVALID'],
    ['an empty sub', `${b64({ alg: 'ES256' })}.${b64({ ...claims, sub: '' })}.`, 'ERR_JWT_INVALID'],
    ['a null exp', `${b64({ alg: 'ES256' })}.${b64({ ...claims, exp: null })}.`, 'ERR_JWT_INVALID'],
    [
      'an iat that is a string',
      `${b64({ alg: 'ES256' })}.${b64({ ...claims, iat: '1' })}.`,
      'ERR_JWT_INVALID',
    ],
    [
      'an nbf that is a string',
      `${b64({ alg: 'ES256' })}.${b64({ ...claims, nbf: '1' })}.`,
      'ERR_JWT_INVALID',
    ],
    [
      'an aud of the wrong type',
      `${b64({ alg: 'ES256' })}.${b64({ ...claims, aud: { a: 1 } })}.`,
      'ERR_JWT_INVALID',
    ],
  ])('refuses %s', (_name, token, code) => {
    expect(codeOf(() => parseJwtSvidInsecure(token))).toBe(code)
  })

  it('gives a value or an IdentityError with a JWT code for anything (fuzz)', () => {
    const codes = ['ERR_JWT_MALFORMED', 'ERR_JWT_ALG_UNSUPPORTED', 'ERR_JWT_INVALID']
    const tokens = fc.oneof(
      fc.string(),
      fc.anything().map((v) => v as string),
      fc.tuple(fc.jsonValue(), fc.jsonValue(), fc.string()).map(([h, c, s]) => `${b64(h)}.${b64(c)}.${s}`),
      fc
        .tuple(fc.constantFrom('ES256', 'RS256', 'none'), fc.jsonValue(), fc.jsonValue())
        .map(([alg, aud, exp]) => `${b64({ alg })}.${b64({ ...claims, aud, exp })}.`),
    )
    fc.assert(
      fc.property(tokens, (token) => {
        const code = codeOf(() => parseJwtSvidInsecure(token))
        if (code !== undefined) expect(codes).toContain(code)
      }),
      { numRuns: 500 },
    )
  })
})
