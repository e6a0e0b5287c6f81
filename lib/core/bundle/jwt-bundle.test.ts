import { generateKeyPair, type KeyObject } from 'node:crypto'
import { promisify } from 'node:util'
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { isIdentityError } from '../errors.js'
import { TrustDomain } from '../trust-domain.js'
import { exportPublicJwk } from './jwk.js'
import { JwtBundle } from './jwt-bundle.js'
import { leadingZeroP256Jwk, unpaddedP256Jwk } from './test-fixtures.js'

const generate = promisify(generateKeyPair)
const td = TrustDomain.parse('example.org')

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return isIdentityError(err) ? err.code : `not an IdentityError: ${String(err)}`
  }
  return undefined
}

describe('JwtBundle', () => {
  let ec: { publicKey: KeyObject; privateKey: KeyObject }
  let rsa: { publicKey: KeyObject; privateKey: KeyObject }

  beforeAll(async () => {
    ec = await generate('ec', { namedCurve: 'P-256' })
    rsa = await generate('rsa', { modulusLength: 2048 })
  })

  it('marshals the Workload API form: kty, kid, key members, no use, sorted by kid', () => {
    const bundle = JwtBundle.fromAuthorities(td, [
      { kid: 'zz', key: rsa.publicKey },
      { kid: 'aa', key: ec.publicKey },
    ])
    const doc = JSON.parse(bundle.marshal())
    expect(doc.keys.map((k: object) => Object.keys(k))).toEqual([
      ['kty', 'kid', 'crv', 'x', 'y'],
      ['kty', 'kid', 'n', 'e'],
    ])
    expect(doc.keys[0]).toEqual({ kid: 'aa', ...exportPublicJwk(ec.publicKey) })
    expect(Object.keys(doc)).toEqual(['keys'])
  })

  it('round-trips through JWKS text and bytes', () => {
    const bundle = JwtBundle.fromAuthorities(td, [
      { kid: 'k1', key: ec.publicKey },
      { kid: 'k2', key: rsa.publicKey },
    ])
    const text = bundle.marshal()
    expect(JwtBundle.parse(td, text).equals(bundle)).toBe(true)
    expect(JwtBundle.parse(td, new TextEncoder().encode(text)).marshal()).toBe(text)
  })

  it('accepts the SPIFFE jwt-svid form and drops use on output', () => {
    const doc = { keys: [{ use: 'jwt-svid', kid: 'k', ...leadingZeroP256Jwk }] }
    const bundle = JwtBundle.fromJwks(td, doc)
    expect(bundle.toJwks().keys[0]).toEqual({
      kty: 'EC',
      kid: 'k',
      crv: 'P-256',
      x: leadingZeroP256Jwk.x,
      y: leadingZeroP256Jwk.y,
    })
  })

  it('zero-pads EC coordinates to the curve size', () => {
    const bundle = JwtBundle.fromJwks(td, { keys: [{ kid: 'k', ...unpaddedP256Jwk }] })
    expect(bundle.toJwks().keys[0]?.['x']).toBe(leadingZeroP256Jwk.x)
  })

  it('keeps only the public half of a private key', () => {
    const bundle = JwtBundle.fromAuthorities(td, [{ kid: 'k', key: ec.privateKey }])
    expect(bundle.findAuthority('k')?.key.type).toBe('public')
    expect(bundle.findAuthority('k')?.key.equals(ec.publicKey)).toBe(true)
  })

  it('is immutable: adding and removing return new bundles', () => {
    const empty = JwtBundle.empty(td)
    const one = empty.withAuthority('k', ec.publicKey)
    const replaced = one.withAuthority('k', rsa.publicKey)
    expect(empty.isEmpty).toBe(true)
    expect(one.hasAuthority('k')).toBe(true)
    expect(one.findAuthority('k')?.key.equals(ec.publicKey)).toBe(true)
    expect(replaced.authorities).toHaveLength(1)
    expect(replaced.findAuthority('k')?.key.equals(rsa.publicKey)).toBe(true)
    expect(one.withoutAuthority('k').isEmpty).toBe(true)
    expect(one.hasAuthority('k')).toBe(true)
    expect(Object.isFrozen(one.authorities)).toBe(true)
  })

  it('compares trust domain, kids and keys', () => {
    const a = JwtBundle.fromAuthorities(td, [{ kid: 'k', key: ec.publicKey }])
    expect(a.equals(JwtBundle.fromAuthorities(td, [{ kid: 'k', key: ec.publicKey }]))).toBe(true)
    expect(a.equals(JwtBundle.fromAuthorities(td, [{ kid: 'j', key: ec.publicKey }]))).toBe(false)
    expect(a.equals(JwtBundle.fromAuthorities(td, [{ kid: 'k', key: rsa.publicKey }]))).toBe(false)
    expect(
      a.equals(JwtBundle.fromAuthorities(TrustDomain.parse('other.org'), [{ kid: 'k', key: ec.publicKey }])),
    ).toBe(false)
  })

  it('refuses an empty or repeated kid when built from keys', () => {
    expect(codeOf(() => JwtBundle.fromAuthorities(td, [{ kid: '', key: ec.publicKey }]))).toBe(
      'ERR_BUNDLE_MALFORMED',
    )
    const twice = [
      { kid: 'k', key: ec.publicKey },
      { kid: 'k', key: rsa.publicKey },
    ]
    expect(codeOf(() => JwtBundle.fromAuthorities(td, twice))).toBe('ERR_BUNDLE_MALFORMED')
  })

  const key = { kty: 'EC', crv: 'P-256', x: leadingZeroP256Jwk.x, y: leadingZeroP256Jwk.y }
  it.each([
    ['not JSON', '{'],
    ['not an object', '[]'],
    ['null', 'null'],
    ['no keys', '{}'],
    ['keys not an array', '{"keys":{}}'],
    ['a key that is not an object', '{"keys":[1]}'],
    ['a key without kid', JSON.stringify({ keys: [key] })],
    ['an empty kid', JSON.stringify({ keys: [{ ...key, kid: '' }] })],
    ['a numeric kid', JSON.stringify({ keys: [{ ...key, kid: 1 }] })],
    [
      'a repeated kid',
      JSON.stringify({
        keys: [
          { ...key, kid: 'a' },
          { ...key, kid: 'a' },
        ],
      }),
    ],
    ['bad key members', JSON.stringify({ keys: [{ ...key, kid: 'a', y: key.x }] })],
    ['private key material', JSON.stringify({ keys: [{ ...key, kid: 'a', d: key.x }] })],
  ])('refuses %s with ERR_BUNDLE_MALFORMED', (_name, doc) => {
    expect(codeOf(() => JwtBundle.parse(td, doc))).toBe('ERR_BUNDLE_MALFORMED')
  })

  it('ignores, each on its own, a key of an unknown kty or crv and a key whose use is not jwt-svid', () => {
    const doc = JSON.stringify({
      keys: [
        { kty: 'oct', kid: 'sym', k: 'AAAA' },
        { kty: 'PQC', kid: 'future', pub: 'AAAA' },
        { ...key, crv: 'P-999', kid: 'curve' },
        { ...key, kid: 'x509', use: 'x509-svid' },
        { ...key, kid: 'other-use', use: 'enc' },
        { ...key, kid: 'plain' },
        { ...key, kid: 'spiffe', use: 'jwt-svid' },
      ],
    })
    const bundle = JwtBundle.parse(td, doc)
    expect(bundle.authorities.map((a) => a.kid)).toEqual(['plain', 'spiffe'])
  })

  it('refuses bytes that are not UTF-8', () => {
    expect(codeOf(() => JwtBundle.parse(td, Uint8Array.from([0x7b, 0xff, 0x7d])))).toBe(
      'ERR_BUNDLE_MALFORMED',
    )
  })

  it('gives a bundle or ERR_BUNDLE_MALFORMED for any input (fuzz)', () => {
    const jwkish = fc.record(
      {
        kty: fc.constantFrom('EC', 'RSA', 'OKP', 'oct', 1),
        kid: fc.oneof(fc.string(), fc.integer()),
        crv: fc.string(),
        x: fc.base64String(),
        y: fc.string(),
        n: fc.string(),
        e: fc.string(),
      },
      { requiredKeys: [] },
    )
    const docs = fc.oneof(
      fc.string(),
      fc.json(),
      fc.record({ keys: fc.array(fc.oneof(jwkish, fc.jsonValue())) }).map((d) => JSON.stringify(d)),
    )
    fc.assert(
      fc.property(docs, (doc) => {
        const code = codeOf(() => JwtBundle.parse(td, doc))
        expect(code === undefined || code === 'ERR_BUNDLE_MALFORMED').toBe(true)
      }),
      { numRuns: 400 },
    )
  })
})
