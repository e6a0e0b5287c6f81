import { describe, expect, it } from 'vitest'
import type { IgnoredBundleKey } from '../../lib/core/bundle/spiffe-bundle.js'
import { type ErrorCode, IdentityError } from '../../lib/core/errors.js'
import { TestCa } from '../../test/helpers/test-ca.js'
import { describeIgnoredKeys, fromBundle, toFederatedBundle } from './convert-bundle.js'

function codeOf(fn: () => unknown): ErrorCode | undefined {
  try {
    fn()
  } catch (err) {
    if (err instanceof IdentityError) return err.code
    throw err
  }
  return undefined
}

const ca = await TestCa.create('other.org')
const request = (data: string, format = '', trustDomain = 'spiffe://other.org') => ({
  trust_domain: trustDomain,
  data,
  format,
})

describe('toFederatedBundle', () => {
  it('reads PEM and SPIFFE documents, guessing the format when none is given', () => {
    const fromPem = toFederatedBundle(request(ca.bundlePem))
    expect(fromPem.trustDomain.name).toBe('other.org')
    expect(fromPem.x509Authorities).toHaveLength(1)
    const document = fromBundle(fromPem).spiffe_bundle ?? ''
    const fromDocument = toFederatedBundle(request(document, 'spiffe'))
    expect(fromDocument.toX509Bundle().equals(fromPem.toX509Bundle())).toBe(true)
    expect(toFederatedBundle(request(ca.bundlePem, 'pem')).x509Authorities).toHaveLength(1)
  })

  it.each<[string, ReturnType<typeof request>, ErrorCode]>([
    ['no trust domain', request('x', '', ''), 'ERR_TRUST_DOMAIN_INVALID'],
    ['a malformed trust domain', request('x', '', 'Other Org'), 'ERR_TRUST_DOMAIN_INVALID'],
    ['an unknown format', request('x', 'der'), 'ERR_REQUEST_INVALID'],
    ['junk as a document', request('not json', 'spiffe'), 'ERR_BUNDLE_MALFORMED'],
    ['an empty key set', request('{"keys":[]}', 'spiffe'), 'ERR_BUNDLE_MALFORMED'],
    ['PEM without certificates', request('hello', 'pem'), 'ERR_BUNDLE_MALFORMED'],
    [
      'broken PEM',
      request('-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n'),
      'ERR_BUNDLE_MALFORMED',
    ],
  ])('refuses %s', (_name, req, code) => {
    expect(codeOf(() => toFederatedBundle(req))).toBe(code)
  })
})

describe('toFederatedBundle with unusable key elements (Bundle §4.1–4.2)', () => {
  const x509Key = () =>
    JSON.parse(fromBundle(toFederatedBundle(request(ca.bundlePem))).spiffe_bundle ?? '').keys[0]
  const unusable = [
    { use: 'jwt-svid', kty: 'PQC', kid: 'future', pub: 'AAAA' },
    { use: 'jwt-svid', kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' },
  ]

  it('keeps the usable keys and reports each ignored one', () => {
    const seen: IgnoredBundleKey[][] = []
    const data = JSON.stringify({ keys: [...unusable, x509Key()] })
    const bundle = toFederatedBundle(request(data, 'spiffe'), (ignored) => seen.push([...ignored]))
    expect(bundle.x509Authorities).toHaveLength(1)
    expect(seen).toHaveLength(1)
    expect(seen[0]?.map((k) => k.index)).toEqual([0, 1])
    expect(describeIgnoredKeys(seen[0] ?? [])).toContain('key #0 (jwt-svid "future")')
  })

  it('refuses a document with no usable key with ERR_BUNDLE_MALFORMED, and reports nothing', () => {
    const seen: unknown[] = []
    const req = request(JSON.stringify({ keys: unusable }), 'spiffe')
    expect(codeOf(() => toFederatedBundle(req, (ignored) => seen.push(ignored)))).toBe('ERR_BUNDLE_MALFORMED')
    expect(seen).toEqual([])
  })
})

describe('fromBundle', () => {
  it('gives the structured bundle, its document and its PEM', () => {
    const bundle = toFederatedBundle(request(ca.bundlePem)).with({ sequence: 2n ** 63n })
    const response = fromBundle(bundle)
    expect(response.pem).toBe(ca.bundlePem)
    expect(response.bundle?.trust_domain).toBe('other.org')
    expect(response.bundle?.sequence_number).toBe('9223372036854775808')
    expect(response.bundle?.x509_authorities).toHaveLength(1)
    expect(JSON.parse(response.spiffe_bundle ?? '')).toHaveProperty('keys')
  })
})
