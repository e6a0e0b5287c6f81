import { describe, expect, it } from 'vitest'
import { type ErrorCode, IdentityError } from '../../lib/core/errors.js'
import { TestCa } from '../../test/helpers/test-ca.js'
import { fromBundle, toFederatedBundle } from './convert-bundle.js'

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
