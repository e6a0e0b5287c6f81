import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isIdentityError } from '../errors.js'
import { TrustDomain } from '../trust-domain.js'
import { SpiffeBundle } from './spiffe-bundle.js'
import { marshalBundleMap, parseBundleMap } from './spiffe-bundle-map.js'
import { caP256CertPem, caRsaCertPem } from './test-fixtures.js'
import { X509Bundle } from './x509-bundle.js'

const a = TrustDomain.parse('a.example')
const b = TrustDomain.parse('b.example')
const bundleA = SpiffeBundle.of(a, { x509: X509Bundle.parsePem(a, caP256CertPem), sequence: 2n ** 60n + 3n })
const bundleB = SpiffeBundle.of(b, { x509: X509Bundle.parsePem(b, caRsaCertPem), refreshHintSeconds: 60 })

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return isIdentityError(err) ? err.code : `not an IdentityError: ${String(err)}`
  }
  return undefined
}

describe('bundle map', () => {
  it('round-trips, in name order, without refresh hints', () => {
    const text = marshalBundleMap([bundleB, bundleA])
    expect(Object.keys(JSON.parse(text).trust_domains)).toEqual(['a.example', 'b.example'])
    expect(text).not.toContain('spiffe_refresh_hint')
    const map = parseBundleMap(text)
    expect([...map.keys()]).toEqual(['a.example', 'b.example'])
    expect(map.get('a.example')?.equals(bundleA)).toBe(true)
    expect(map.get('a.example')?.sequence).toBe(2n ** 60n + 3n)
    expect(map.get('b.example')?.refreshHintSeconds).toBeUndefined()
  })

  it('accepts trust domain IDs as names and ignores per-bundle hints', () => {
    const text = `{"trust_domains":{"spiffe://a.example":{"keys":[],"spiffe_refresh_hint":5}}}`
    const map = parseBundleMap(text)
    expect(map.get('a.example')?.refreshHintSeconds).toBeUndefined()
  })

  it.each([
    ['no trust_domains', '{}'],
    ['trust_domains not an object', '{"trust_domains":[]}'],
    ['a repeated name', '{"trust_domains":{"a.example":{"keys":[]},"a.example":{"keys":[]}}}'],
    [
      'a name repeated as an ID',
      '{"trust_domains":{"a.example":{"keys":[]},"spiffe://a.example":{"keys":[]}}}',
    ],
    ['a name that is not a trust domain', '{"trust_domains":{"A B":{"keys":[]}}}'],
    ['an ID with a path', '{"trust_domains":{"spiffe://a.example/x":{"keys":[]}}}'],
    ['a bad bundle', '{"trust_domains":{"a.example":{}}}'],
    ['not JSON', '{"trust_domains":'],
  ])('refuses %s with ERR_BUNDLE_MALFORMED', (_name, text) => {
    expect(codeOf(() => parseBundleMap(text))).toBe('ERR_BUNDLE_MALFORMED')
  })

  it('refuses to write two bundles of one trust domain', () => {
    expect(codeOf(() => marshalBundleMap([bundleA, SpiffeBundle.of(a)]))).toBe('ERR_BUNDLE_MALFORMED')
  })

  it('gives a map or ERR_BUNDLE_MALFORMED for any input (fuzz)', () => {
    const docs = fc.oneof(
      fc.string(),
      fc.json(),
      fc.dictionary(fc.string(), fc.jsonValue()).map((d) => JSON.stringify({ trust_domains: d })),
    )
    fc.assert(
      fc.property(docs, (text) => {
        const code = codeOf(() => parseBundleMap(text))
        expect(code === undefined || code === 'ERR_BUNDLE_MALFORMED').toBe(true)
      }),
      { numRuns: 300 },
    )
  })
})
