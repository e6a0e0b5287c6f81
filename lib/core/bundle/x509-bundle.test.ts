import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isIdentityError } from '../errors.js'
import { TrustDomain } from '../trust-domain.js'
import { decodePem } from '../x509/pem.js'
import { caP256CertPem, caP384CertPem, caRsaCertPem } from './test-fixtures.js'
import { X509Bundle } from './x509-bundle.js'

const td = TrustDomain.parse('example.org')
const ders = [caP256CertPem, caP384CertPem, caRsaCertPem].map((pem) => decodePem(pem)[0]!)
const concatenated = Buffer.concat(ders)

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return isIdentityError(err) ? err.code : `not an IdentityError: ${String(err)}`
  }
  return undefined
}

describe('X509Bundle', () => {
  it('round-trips concatenated DER', () => {
    const bundle = X509Bundle.parseDer(td, concatenated)
    expect(bundle.authorities).toHaveLength(3)
    expect(bundle.trustDomain.equals(td)).toBe(true)
    expect(bundle.marshalDer().equals(concatenated)).toBe(true)
  })

  it('round-trips PEM, ignoring blocks with other labels', () => {
    const pem = `${caP256CertPem}-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n${caRsaCertPem}`
    const bundle = X509Bundle.parsePem(td, pem)
    expect(bundle.authorities).toHaveLength(2)
    const again = X509Bundle.parsePem(td, bundle.marshalPem())
    expect(again.equals(bundle)).toBe(true)
    expect(again.marshalDer().equals(Buffer.concat([ders[0]!, ders[2]!]))).toBe(true)
    expect(X509Bundle.parsePem(td, new TextEncoder().encode(pem)).equals(bundle)).toBe(true)
  })

  it('gives an empty bundle for empty input', () => {
    expect(X509Bundle.parseDer(td, new Uint8Array()).isEmpty).toBe(true)
    expect(X509Bundle.parsePem(td, 'no blocks here').isEmpty).toBe(true)
    expect(X509Bundle.empty(td).marshalDer()).toHaveLength(0)
  })

  it('keeps each certificate once', () => {
    const bundle = X509Bundle.parseDer(td, Buffer.concat([ders[0]!, ders[1]!, ders[0]!]))
    expect(bundle.authorities).toHaveLength(2)
  })

  it('is immutable: adding and removing return new bundles', () => {
    const [a, b] = X509Bundle.parseDer(td, concatenated).authorities
    const one = X509Bundle.fromAuthorities(td, [a!])
    const two = one.withAuthority(b!)
    expect(one.authorities).toHaveLength(1)
    expect(two.authorities).toHaveLength(2)
    expect(two.hasAuthority(b!)).toBe(true)
    expect(one.hasAuthority(b!)).toBe(false)
    expect(two.withAuthority(b!).authorities).toHaveLength(2)
    expect(two.withoutAuthority(a!).authorities).toEqual([b])
    expect(Object.isFrozen(two.authorities)).toBe(true)
  })

  it('does not change when the parsed buffer is changed afterwards', () => {
    const input = Buffer.from(concatenated)
    const bundle = X509Bundle.parseDer(td, input)
    input.fill(0)
    expect(bundle.marshalDer().equals(concatenated)).toBe(true)
  })

  it('compares trust domain and authorities, in any order', () => {
    const all = X509Bundle.parseDer(td, concatenated)
    const reversed = X509Bundle.fromAuthorities(td, [...all.authorities].reverse())
    expect(all.equals(reversed)).toBe(true)
    expect(all.equals(all.withoutAuthority(all.authorities[0]!))).toBe(false)
    expect(all.equals(X509Bundle.fromAuthorities(TrustDomain.parse('other.org'), all.authorities))).toBe(
      false,
    )
  })

  it.each([
    ['truncated DER', () => X509Bundle.parseDer(td, concatenated.subarray(0, concatenated.length - 1))],
    ['trailing junk', () => X509Bundle.parseDer(td, Buffer.concat([ders[0]!, Buffer.from([0x30])]))],
    ['unterminated PEM', () => X509Bundle.parsePem(td, '-----BEGIN CERTIFICATE-----\nAAAA\n')],
    [
      'bad base64 in PEM',
      () => X509Bundle.parsePem(td, '-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n'),
    ],
    [
      'a PEM block that is not a certificate',
      () => X509Bundle.parsePem(td, '-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n'),
    ],
  ])('refuses %s with ERR_BUNDLE_MALFORMED', (_name, fn) => {
    expect(codeOf(fn)).toBe('ERR_BUNDLE_MALFORMED')
  })

  it('gives a bundle or ERR_BUNDLE_MALFORMED for any bytes or text (fuzz)', () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      fc.tuple(fc.nat(concatenated.length), fc.nat(255)).map(([at, v]) => {
        const copy = Buffer.from(concatenated)
        copy[at % copy.length] = v
        return copy
      }),
    )
    fc.assert(
      fc.property(bytes, (input) => {
        const code = codeOf(() => X509Bundle.parseDer(td, input))
        expect(code === undefined || code === 'ERR_BUNDLE_MALFORMED').toBe(true)
      }),
      { numRuns: 300 },
    )
    const text = fc.oneof(
      fc.string(),
      fc.string().map((s) => `-----BEGIN CERTIFICATE-----\n${s}\n-----END CERTIFICATE-----\n`),
    )
    fc.assert(
      fc.property(text, (input) => {
        const code = codeOf(() => X509Bundle.parsePem(td, input))
        expect(code === undefined || code === 'ERR_BUNDLE_MALFORMED').toBe(true)
      }),
      { numRuns: 300 },
    )
  })
})
