import { createPublicKey, ECDH, generateKeyPair, type KeyObject } from 'node:crypto'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'
import { isIdentityError } from '../errors.js'
import { exportPublicJwk, importPublicJwk, isSupportedJwk } from './jwk.js'
import { leadingZeroP256Jwk, unpaddedP256Jwk } from './test-fixtures.js'

const generate = promisify(generateKeyPair)

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return isIdentityError(err) ? err.code : `not an IdentityError: ${String(err)}`
  }
  return undefined
}

describe('JWK conversion', () => {
  let keys: Record<string, { publicKey: KeyObject; privateKey: KeyObject }>

  beforeAll(async () => {
    keys = {
      p256: await generate('ec', { namedCurve: 'P-256' }),
      p384: await generate('ec', { namedCurve: 'P-384' }),
      p521: await generate('ec', { namedCurve: 'P-521' }),
      rsa: await generate('rsa', { modulusLength: 2048 }),
      ed25519: await generate('ed25519'),
    }
  })

  it.each(['p256', 'p384', 'p521', 'rsa', 'ed25519'])('round-trips a %s public key', (name) => {
    const { publicKey } = keys[name]!
    const jwk = exportPublicJwk(publicKey)
    expect(importPublicJwk(jwk).equals(publicKey)).toBe(true)
  })

  it('writes EC members in a fixed order with coordinates of the curve size', () => {
    const jwk = exportPublicJwk(keys['p521']!.publicKey)
    expect(Object.keys(jwk)).toEqual(['kty', 'crv', 'x', 'y'])
    if (jwk.kty !== 'EC') throw new Error('expected EC')
    expect(Buffer.from(jwk.x, 'base64url')).toHaveLength(66)
    expect(Buffer.from(jwk.y, 'base64url')).toHaveLength(66)
  })

  it('gives the public half of a private key', () => {
    expect(exportPublicJwk(keys['p256']!.privateKey)).toEqual(exportPublicJwk(keys['p256']!.publicKey))
  })

  it('zero-pads a short coordinate on import and keeps the padding on export', () => {
    const key = importPublicJwk(unpaddedP256Jwk)
    expect(exportPublicJwk(key)).toEqual(leadingZeroP256Jwk)
    expect(key.equals(importPublicJwk(leadingZeroP256Jwk))).toBe(true)
  })

  it('expands a compressed point', () => {
    const pub = keys['p256']!.publicKey
    const spki = pub.export({ type: 'spki', format: 'der' })
    const point = spki.subarray(spki.length - 65)
    const compressed = ECDH.convertKey(point, 'prime256v1', undefined, undefined, 'compressed') as Buffer
    const prefix = Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex')
    const key = createPublicKey({ key: Buffer.concat([prefix, compressed]), format: 'der', type: 'spki' })
    expect(exportPublicJwk(key)).toEqual(exportPublicJwk(pub))
  })

  it.each([
    ['a private member', { ...leadingZeroP256Jwk, d: 'AAAA' }],
    ['an unknown kty', { kty: 'oct', k: 'AAAA' }],
    ['an unknown curve', { ...leadingZeroP256Jwk, crv: 'secp256k1' }],
    ['a missing y', { kty: 'EC', crv: 'P-256', x: leadingZeroP256Jwk.x }],
    ['padded base64', { ...leadingZeroP256Jwk, x: `${leadingZeroP256Jwk.x}=` }],
    ['standard base64', { ...leadingZeroP256Jwk, x: leadingZeroP256Jwk.x.replace('-', '+') }],
    ['a too long coordinate', { ...leadingZeroP256Jwk, x: Buffer.alloc(33, 1).toString('base64url') }],
    ['a point off the curve', { ...leadingZeroP256Jwk, y: leadingZeroP256Jwk.x }],
    ['a non-string member', { kty: 'RSA', n: 5, e: 'AQAB' }],
  ])('refuses %s with ERR_KEY_MALFORMED', (_name, jwk) => {
    expect(codeOf(() => importPublicJwk(jwk as Record<string, unknown>))).toBe('ERR_KEY_MALFORMED')
  })

  it('knows which kty and crv it supports', () => {
    expect(isSupportedJwk({ kty: 'EC', crv: 'P-384' })).toBe(true)
    expect(isSupportedJwk({ kty: 'EC', crv: 'P-192' })).toBe(false)
    expect(isSupportedJwk({ kty: 'OKP', crv: 'X25519' })).toBe(false)
    expect(isSupportedJwk({ kty: 'RSA' })).toBe(true)
    expect(isSupportedJwk({})).toBe(false)
  })
})
