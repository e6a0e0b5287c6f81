import { generateKeyPair, type KeyObject, webcrypto } from 'node:crypto'
import { promisify } from 'node:util'
import { jwtVerify } from 'jose'
import { beforeAll, describe, expect, it } from 'vitest'
import { isIdentityError } from '../errors.js'
import { SpiffeId } from '../spiffe-id.js'
import { type MintJwtSvidParams, mintJwtSvid } from './jwt-svid-mint.js'

const generate = promisify(generateKeyPair)
const id = SpiffeId.parse('spiffe://example.org/workload')
const NOW = 1_700_000_000_400

interface Pair {
  publicKey: KeyObject
  privateKey: KeyObject
}
let ec: Pair
let p384: Pair
let rsa: Pair
let ed: Pair

function decode(token: string): {
  header: Record<string, unknown>
  claims: Record<string, unknown>
  raw: string[]
} {
  const raw = token.split('.').map((p) => Buffer.from(p, 'base64url').toString())
  return { header: JSON.parse(raw[0]!), claims: JSON.parse(raw[1]!), raw }
}

const params = (over: Partial<MintJwtSvidParams> = {}): MintJwtSvidParams => ({
  id,
  audience: ['svc'],
  key: { kid: 'k1', privateKey: ec.privateKey },
  nowMs: NOW,
  ttlMs: 300_000,
  ...over,
})

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise
  } catch (err) {
    return isIdentityError(err) ? err.code : `not an IdentityError: ${String(err)}`
  }
  return undefined
}

beforeAll(async () => {
  ;[ec, p384, rsa, ed] = await Promise.all([
    generate('ec', { namedCurve: 'P-256' }),
    generate('ec', { namedCurve: 'P-384' }),
    generate('rsa', { modulusLength: 2048 }),
    generate('ed25519'),
  ])
})

describe('mintJwtSvid', () => {
  it('writes the header exactly {alg, kid, typ} and the claims sub, aud, exp, iat, jti', async () => {
    const { raw, claims } = decode(await mintJwtSvid(params({ audience: ['a', 'b', 'a'], jwtId: 'j1' })))
    expect(raw[0]).toBe('{"alg":"ES256","kid":"k1","typ":"JWT"}')
    expect(Object.keys(claims)).toEqual(['sub', 'aud', 'exp', 'iat', 'jti'])
    expect(claims).toEqual({
      sub: id.toString(),
      aud: ['a', 'b', 'a'],
      exp: 1_700_000_300,
      iat: 1_700_000_000,
      jti: 'j1',
    })
  })

  it('gives every token its own random jti unless told one, so one token can be revoked', async () => {
    const a = decode(await mintJwtSvid(params({}))).claims['jti']
    const b = decode(await mintJwtSvid(params({}))).claims['jti']
    expect(a).toMatch(/^[A-Za-z0-9_-]{22}$/)
    expect(a).not.toBe(b)
  })

  it('writes aud as an array even for one audience, and integer times', async () => {
    const { claims } = decode(await mintJwtSvid(params({ nowMs: NOW + 0.7, ttlMs: 1234.5 })))
    expect(claims['aud']).toEqual(['svc'])
    expect(Number.isInteger(claims['exp'])).toBe(true)
    expect(Number.isInteger(claims['iat'])).toBe(true)
    expect(claims['exp']).toBe(1_700_000_001)
  })

  it('writes iss first when an issuer is given (cloud STS services match it to the OIDC issuer), and refuses an empty one', async () => {
    const { claims } = decode(await mintJwtSvid(params({ issuer: 'https://oidc.example.org', jwtId: 'j' })))
    expect(Object.keys(claims)).toEqual(['iss', 'sub', 'aud', 'exp', 'iat', 'jti'])
    expect(claims['iss']).toBe('https://oidc.example.org')
    expect(await codeOf(mintJwtSvid(params({ issuer: '' })))).toBe('ERR_JWT_INVALID')
  })

  it('caps exp at expiresAtCapMs', async () => {
    const { claims } = decode(await mintJwtSvid(params({ expiresAtCapMs: NOW + 10_999 })))
    expect(claims['exp']).toBe(1_700_000_011)
  })

  it.each([
    ['P-384', () => p384.privateKey, 'ES384'],
    ['RSA', () => rsa.privateKey, 'RS256'],
  ])('signs with a %s key as %s', async (_name, key, alg) => {
    const { header } = decode(await mintJwtSvid(params({ key: { kid: 'k', privateKey: key() } })))
    expect(header['alg']).toBe(alg)
  })

  it('allows the trust domain ID as subject', async () => {
    const root = SpiffeId.parse('spiffe://example.org')
    expect(decode(await mintJwtSvid(params({ id: root }))).claims['sub']).toBe('spiffe://example.org')
  })

  it('verifies with plain jose against the public key', async () => {
    const token = await mintJwtSvid(params())
    // A CryptoKey, not the KeyObject: jose would export an EC KeyObject as JWK on Node 20 (DESIGN.md §5).
    const spki = ec.publicKey.export({ type: 'spki', format: 'der' })
    const key = await webcrypto.subtle.importKey(
      'spki',
      spki,
      { name: 'ECDSA', namedCurve: 'P-256' },
      false,
      ['verify'],
    )
    const { payload } = await jwtVerify(token, key, { audience: 'svc', currentDate: new Date(NOW) })
    expect(payload.sub).toBe(id.toString())
  })

  it.each<[string, () => Partial<MintJwtSvidParams>, string]>([
    ['an empty audience list', () => ({ audience: [] }), 'ERR_JWT_INVALID'],
    ['an empty audience', () => ({ audience: ['svc', ''] }), 'ERR_JWT_INVALID'],
    ['a non-string audience', () => ({ audience: [1 as unknown as string] }), 'ERR_JWT_INVALID'],
    ['an empty kid', () => ({ key: { kid: '', privateKey: ec.privateKey } }), 'ERR_JWT_INVALID'],
    [
      'a subject that is not a SpiffeId',
      () => ({ id: 'spiffe://example.org/x' as unknown as SpiffeId }),
      'ERR_ID_INVALID',
    ],
    ['a zero ttl', () => ({ ttlMs: 0 }), 'ERR_TTL_INVALID'],
    ['a negative ttl', () => ({ ttlMs: -5 }), 'ERR_TTL_INVALID'],
    ['a NaN now', () => ({ nowMs: Number.NaN }), 'ERR_TTL_INVALID'],
    ['a cap in the past', () => ({ expiresAtCapMs: NOW - 1 }), 'ERR_TTL_INVALID'],
    ['a lifetime within the issue second', () => ({ ttlMs: 500 }), 'ERR_TTL_INVALID'],
    ['a public key', () => ({ key: { kid: 'k', privateKey: ec.publicKey } }), 'ERR_KEY_MALFORMED'],
    [
      'a key that is not a KeyObject',
      () => ({ key: { kid: 'k', privateKey: {} as KeyObject } }),
      'ERR_KEY_MALFORMED',
    ],
    ['an Ed25519 key', () => ({ key: { kid: 'k', privateKey: ed.privateKey } }), 'ERR_JWT_ALG_UNSUPPORTED'],
  ])('refuses %s', async (_name, over, code) => {
    expect(await codeOf(mintJwtSvid(params(over())))).toBe(code)
  })
})
