import { generateKeyPair, type KeyObject } from 'node:crypto'
import { promisify } from 'node:util'
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { isIdentityError } from '../errors.js'
import { TrustDomain } from '../trust-domain.js'
import { exportPublicJwk } from './jwk.js'
import { JwtBundle } from './jwt-bundle.js'
import { MAX_SPIFFE_SEQUENCE, SpiffeBundle } from './spiffe-bundle.js'
import { caP256CertPem, caP384CertPem, caRsaCertPem, leadingZeroP256Jwk } from './test-fixtures.js'
import { X509Bundle } from './x509-bundle.js'

const generate = promisify(generateKeyPair)
const td = TrustDomain.parse('example.org')
const x509 = X509Bundle.parsePem(td, caP256CertPem + caP384CertPem + caRsaCertPem)
const [p256Cert, , rsaCert] = x509.authorities

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return isIdentityError(err) ? err.code : `not an IdentityError: ${String(err)}`
  }
  return undefined
}

function x509Entry(cert = p256Cert!): Record<string, unknown> {
  return { use: 'x509-svid', ...exportPublicJwk(cert.publicKey), x5c: [cert.der.toString('base64')] }
}
const jwtEntry = { use: 'jwt-svid', kid: 'j1', ...leadingZeroP256Jwk }
const doc = (keys: unknown[], extra: Record<string, unknown> = {}) => JSON.stringify({ keys, ...extra })

describe('SpiffeBundle', () => {
  let jwt: JwtBundle
  let rsaKey: KeyObject

  beforeAll(async () => {
    const ec = await generate('ec', { namedCurve: 'P-384' })
    rsaKey = (await generate('rsa', { modulusLength: 2048 })).publicKey
    jwt = JwtBundle.fromAuthorities(td, [
      { kid: 'ec', key: ec.publicKey },
      { kid: 'rsa', key: rsaKey },
    ])
  })

  it('round-trips X.509 and JWT authorities, sequence and hint', () => {
    const bundle = SpiffeBundle.of(td, { x509, jwt, sequence: 42n, refreshHintSeconds: 300 })
    const parsed = SpiffeBundle.parse(td, bundle.marshal())
    expect(parsed.equals(bundle)).toBe(true)
    expect(parsed.toX509Bundle().equals(x509)).toBe(true)
    expect(parsed.toJwtBundle().equals(jwt)).toBe(true)
    expect(parsed.sequence).toBe(42n)
    expect(parsed.refreshHintSeconds).toBe(300)
    expect(parsed.marshal()).toBe(bundle.marshal())
  })

  it('marshals use, key members and x5c for X.509 entries and kid for JWT entries', () => {
    const bundle = SpiffeBundle.of(td, { x509: X509Bundle.fromAuthorities(td, [rsaCert!]), jwt })
    const out = JSON.parse(bundle.marshal())
    expect(Object.keys(out)).toEqual(['keys'])
    expect(Object.keys(out.keys[0])).toEqual(['use', 'kty', 'n', 'e', 'x5c'])
    expect(out.keys[0].x5c).toEqual([rsaCert!.der.toString('base64')])
    expect(Object.keys(out.keys[1])).toEqual(['use', 'kty', 'kid', 'crv', 'x', 'y'])
    expect(out.keys.map((k: { use: string }) => k.use)).toEqual(['x509-svid', 'jwt-svid', 'jwt-svid'])
  })

  it.each([2n ** 53n + 1n, MAX_SPIFFE_SEQUENCE, 0n])('keeps every bit of sequence %s', (sequence) => {
    const text = SpiffeBundle.of(td, { sequence }).marshal()
    expect(text).toBe(`{"keys":[],"spiffe_sequence":${sequence}}`)
    expect(SpiffeBundle.parse(td, text).sequence).toBe(sequence)
  })

  it('reads the last spiffe_sequence when the member repeats, as JSON.parse does', () => {
    expect(
      SpiffeBundle.parse(td, '{"spiffe_sequence":1,"keys":[],"spiffe_sequence":18446744073709551615}')
        .sequence,
    ).toBe(MAX_SPIFFE_SEQUENCE)
  })

  it('accepts an empty key set and null sequence or hint', () => {
    const bundle = SpiffeBundle.parse(
      td,
      '{"keys":[],"spiffe_sequence":null,"spiffe_refresh_hint":null,"other":{"a":[1]}}',
    )
    expect(bundle.x509Authorities).toHaveLength(0)
    expect(bundle.jwtAuthorities).toHaveLength(0)
    expect(bundle.sequence).toBeUndefined()
    expect(bundle.refreshHintSeconds).toBeUndefined()
  })

  it('skips entries with a missing or unknown use or an unknown kty, keeping the rest', () => {
    const keys = [
      x509Entry(),
      { ...jwtEntry, use: undefined, kid: 'no-use' },
      { ...jwtEntry, use: 'wit-svid', kid: 'wit' },
      { ...jwtEntry, use: 'X509-SVID', kid: 'case' },
      { use: 'jwt-svid', kty: 'PQC', kid: 'future', pub: 'AAAA' },
      { use: 'x509-svid', kty: 'EC', crv: 'P-999', x5c: ['AAAA'] },
      jwtEntry,
    ]
    const bundle = SpiffeBundle.parse(td, doc(keys))
    expect(bundle.x509Authorities).toHaveLength(1)
    expect(bundle.jwtAuthorities.map((a) => a.kid)).toEqual(['j1'])
  })

  const x5cOf = (e: Record<string, unknown>) => (e['x5c'] as string[])[0]!
  it.each([
    ['a key that is not an object', () => doc([null])],
    ['an x509-svid entry with a kid', () => doc([{ ...x509Entry(), kid: 'k' }])],
    [
      'an x509-svid entry with two certificates',
      () => doc([{ ...x509Entry(), x5c: [x5cOf(x509Entry()), x5cOf(x509Entry())] }]),
    ],
    ['an x509-svid entry with no x5c', () => doc([{ ...x509Entry(), x5c: [] }])],
    [
      'an x5c in base64url',
      () => doc([{ ...x509Entry(), x5c: [x5cOf(x509Entry()).replaceAll('+', '-').replaceAll('/', '_')] }]),
    ],
    ['an x5c that is not a certificate', () => doc([{ ...x509Entry(), x5c: ['MAA='] }])],
    ['key members that differ from the certificate', () => doc([{ ...x509Entry(), ...leadingZeroP256Jwk }])],
    [
      'key members of another type than the certificate',
      () => doc([{ ...x509Entry(rsaCert), ...leadingZeroP256Jwk, n: undefined }]),
    ],
    [
      'an x509-svid entry without key members',
      () => doc([{ use: 'x509-svid', kty: 'EC', crv: 'P-256', x5c: x509Entry()['x5c'] }]),
    ],
    ['a jwt-svid entry without kid', () => doc([{ ...jwtEntry, kid: undefined }])],
    ['a jwt-svid entry with bad key members', () => doc([{ ...jwtEntry, kid: 'bad', y: jwtEntry.x }])],
    ['a jwt-svid entry with private key material', () => doc([{ ...jwtEntry, kid: 'priv', d: jwtEntry.x }])],
  ])('ignores %s on its own, keeps the other keys, and says why', (_name, make) => {
    const bad = JSON.parse(make()).keys[0]
    const { bundle, ignoredKeys } = SpiffeBundle.parseDetailed(td, doc([x509Entry(), bad, jwtEntry]))
    expect(bundle.x509Authorities).toHaveLength(1)
    expect(bundle.jwtAuthorities.map((a) => a.kid)).toEqual(['j1'])
    expect(ignoredKeys).toHaveLength(1)
    expect(ignoredKeys[0]).toMatchObject({ index: 1, reason: expect.any(String) })
    expect(ignoredKeys[0]?.reason.length).toBeGreaterThan(10)
  })

  it('lists every ignored key with its use, kid, kty and reason', () => {
    const keys = [
      { ...jwtEntry, use: undefined, kid: 'no-use' },
      { use: 'jwt-svid', kty: 'PQC', kid: 'future', pub: 'AAAA' },
      jwtEntry,
      { ...x509Entry(), kid: 'k' },
    ]
    const { bundle, ignoredKeys } = SpiffeBundle.parseDetailed(td, doc(keys))
    expect(bundle.jwtAuthorities.map((a) => a.kid)).toEqual(['j1'])
    expect(ignoredKeys.map((k) => [k.index, k.use, k.kid, k.kty])).toEqual([
      [0, undefined, 'no-use', 'EC'],
      [1, 'jwt-svid', 'future', 'PQC'],
      [3, 'x509-svid', 'k', x509Entry()['kty']],
    ])
    expect(SpiffeBundle.parseDetailed(td, doc([jwtEntry])).ignoredKeys).toEqual([])
  })

  it.each([
    ['no keys member', () => '{"spiffe_sequence":1}'],
    ['keys not an array', () => '{"keys":{}}'],
    ['a repeated jwt-svid kid', () => doc([jwtEntry, jwtEntry])],
    ['a negative sequence', () => doc([], { spiffe_sequence: -1 })],
    ['a fractional sequence', () => doc([], { spiffe_sequence: 1.5 })],
    ['an exponent sequence', () => '{"keys":[],"spiffe_sequence":1e3}'],
    ['a string sequence', () => doc([], { spiffe_sequence: '1' })],
    ['a sequence over 64 bits', () => `{"keys":[],"spiffe_sequence":${MAX_SPIFFE_SEQUENCE + 1n}}`],
    ['a fractional refresh hint', () => doc([], { spiffe_refresh_hint: 0.5 })],
    ['a negative refresh hint', () => doc([], { spiffe_refresh_hint: -5 })],
    ['a string refresh hint', () => doc([], { spiffe_refresh_hint: '300' })],
  ])('refuses %s with ERR_BUNDLE_MALFORMED', (_name, make) => {
    expect(codeOf(() => SpiffeBundle.parse(td, make()))).toBe('ERR_BUNDLE_MALFORMED')
  })

  it('refuses parts of another trust domain and out-of-range values', () => {
    const other = TrustDomain.parse('other.org')
    expect(codeOf(() => SpiffeBundle.of(other, { x509 }))).toBe('ERR_BUNDLE_MALFORMED')
    expect(codeOf(() => SpiffeBundle.of(other, { jwt }))).toBe('ERR_BUNDLE_MALFORMED')
    expect(codeOf(() => SpiffeBundle.of(td, { sequence: -1n }))).toBe('ERR_BUNDLE_MALFORMED')
    expect(codeOf(() => SpiffeBundle.of(td, { refreshHintSeconds: Number.NaN }))).toBe('ERR_BUNDLE_MALFORMED')
  })

  it('replaces parts with `with`, leaving the original unchanged', () => {
    const base = SpiffeBundle.of(td, { x509, sequence: 1n })
    const next = base.with({ jwt, sequence: 2n })
    expect(base.jwtAuthorities).toHaveLength(0)
    expect(next.jwtAuthorities).toHaveLength(2)
    expect(next.x509Authorities).toHaveLength(3)
    expect(next.sequence).toBe(2n)
    expect(base.equals(next)).toBe(false)
  })

  it('gives a bundle or ERR_BUNDLE_MALFORMED for any input (fuzz)', () => {
    const entry = fc.record(
      {
        use: fc.constantFrom('x509-svid', 'jwt-svid', 'other'),
        kty: fc.constantFrom('EC', 'RSA', 'OKP'),
        kid: fc.string(),
        crv: fc.constantFrom('P-256', 'Ed25519', 'x'),
        x: fc.base64String(),
        y: fc.string(),
        x5c: fc.array(fc.oneof(fc.base64String(), fc.constant(x5cOf(x509Entry())))),
      },
      { requiredKeys: ['use'] },
    )
    const docs = fc.oneof(
      fc.string(),
      fc.json(),
      fc
        .record(
          {
            keys: fc.array(fc.oneof(entry, fc.jsonValue())),
            spiffe_sequence: fc.jsonValue(),
            spiffe_refresh_hint: fc.jsonValue(),
          },
          { requiredKeys: ['keys'] },
        )
        .map((d) => JSON.stringify(d)),
    )
    fc.assert(
      fc.property(docs, (text) => {
        const code = codeOf(() => SpiffeBundle.parse(td, text))
        expect(code === undefined || code === 'ERR_BUNDLE_MALFORMED').toBe(true)
      }),
      { numRuns: 400 },
    )
  })
})

describe('SpiffeBundle WIT authorities', () => {
  it('keeps use: wit-svid keys apart from JWT keys, and round-trips them', () => {
    const text = doc([jwtEntry, { use: 'wit-svid', kid: 'w1', ...leadingZeroP256Jwk }])
    const { bundle, ignoredKeys } = SpiffeBundle.parseDetailed(td, text)
    expect(ignoredKeys).toEqual([])
    expect(bundle.jwtAuthorities.map((a) => a.kid)).toEqual(['j1'])
    expect(bundle.witAuthorities.map((a) => a.kid)).toEqual(['w1'])
    const again = SpiffeBundle.parse(td, bundle.marshal())
    expect(again.witAuthorities.map((a) => a.kid)).toEqual(['w1'])
    expect(again.equals(bundle)).toBe(true)
    expect(bundle.equals(bundle.with({ wit: JwtBundle.empty(td) }))).toBe(false)
    expect(JwtBundle.parse(td, bundle.marshal()).authorities.map((a) => a.kid)).toEqual(['j1'])
  })
})
