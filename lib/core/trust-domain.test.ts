import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type ErrorCode, IdentityError } from './errors.js'
import { TrustDomain } from './trust-domain.js'

function codeOf(fn: () => unknown): ErrorCode | undefined {
  try {
    fn()
  } catch (err) {
    if (err instanceof IdentityError) return err.code
    throw err
  }
  return undefined
}

describe('TrustDomain.parse', () => {
  // go-spiffe's TrustDomainFromString: a bare name, or a whole ID when the input contains ':/'.
  it.each([
    ['example.org', 'example.org'],
    ['k8s_west.example.com', 'k8s_west.example.com'],
    ['10.0.0.1', '10.0.0.1'],
    ['a', 'a'],
    ['a..b', 'a..b'],
    ['spiffe://example.org', 'example.org'],
    ['spiffe://example.org/ns/prod/sa/web', 'example.org'],
    ['spiffe://example.org/.hidden/...', 'example.org'],
    ['a'.repeat(255), 'a'.repeat(255)],
  ])('accepts %j as %j', (input, name) => {
    expect(TrustDomain.parse(input).name).toBe(name)
  })

  it.each([
    ['', 'empty'],
    ['Example.org', 'uppercase'],
    ['example.org:8443', 'port (no ":/", so checked as a bare name)'],
    ['user@example.org', 'userinfo'],
    ['[::1]', 'IPv6'],
    ['%62ad', 'percent-encoding'],
    ['example.org/a', 'a slash in a bare name'],
    ['exämple.org', 'non-ASCII'],
    [' example.org', 'whitespace'],
    ['example.org\0', 'NUL'],
    ['a'.repeat(256), 'longer than 255 bytes'],
    ['spiffe://', 'ID with no trust domain'],
    ['spiffe:///a', 'ID with no trust domain'],
    ['spiffe://example.org/', 'ID whose path is bad: the whole ID is validated'],
    ['spiffe://example.org//a', 'ID whose path is bad'],
    ['spiffe://example.org/a%20b', 'ID whose path is bad'],
    ['spiffe:/example.org', 'wrong prefix'],
    ['SPIFFE://example.org', 'uppercase scheme'],
    ['https://example.org', 'other scheme'],
    ['example.org:/x', 'looks like an ID, is not one'],
    [`spiffe://${'a'.repeat(256)}`, 'ID with a trust domain over 255 bytes'],
    [`spiffe://example.org/${'a'.repeat(2048)}`, 'ID over 2048 bytes'],
  ])('refuses %j (%s)', (input) => {
    expect(codeOf(() => TrustDomain.parse(input))).toBe('ERR_TRUST_DOMAIN_INVALID')
  })

  it('trust domain characters are exactly [a-z0-9._-] (checked over U+0000..U+017F)', () => {
    const accepted = Array.from({ length: 0x180 }, (_, c) => String.fromCharCode(c)).filter(
      (c) => codeOf(() => TrustDomain.parse(`a${c}b`)) === undefined,
    )
    expect(accepted.join('')).toBe('-.0123456789_abcdefghijklmnopqrstuvwxyz')
  })

  it('refuses a non-string from untyped callers', () => {
    expect(codeOf(() => TrustDomain.parse(null as unknown as string))).toBe('ERR_TRUST_DOMAIN_INVALID')
  })
})

describe('TrustDomain.fromValidated', () => {
  it('builds a name and still refuses a bad one, so no instance is ever invalid', () => {
    expect(TrustDomain.fromValidated('example.org').name).toBe('example.org')
    expect(codeOf(() => TrustDomain.fromValidated('Bad'))).toBe('ERR_TRUST_DOMAIN_INVALID')
    expect(codeOf(() => TrustDomain.fromValidated('spiffe://example.org'))).toBe('ERR_TRUST_DOMAIN_INVALID')
  })
})

describe('TrustDomain values', () => {
  const td = TrustDomain.parse('example.org')

  it.each([
    ['example.org', undefined],
    ['10.0.0.1', undefined],
    ['a..b', 'ERR'],
    ['.a', 'ERR'],
    ['a.', 'ERR'],
    ['.', 'ERR'],
  ])('issuanceProblem of %j (spec §1 row 24)', (name, expected) => {
    const problem = TrustDomain.parse(name).issuanceProblem()
    expect(problem === undefined ? undefined : 'ERR').toBe(expected)
  })

  it('idString, toString and toJSON', () => {
    expect(td.idString()).toBe('spiffe://example.org')
    expect(td.toString()).toBe('example.org')
    expect(JSON.stringify({ td })).toBe('{"td":"example.org"}')
  })

  it.each([
    ['example.org', true],
    ['spiffe://example.org/x', true],
    ['example.com', false],
    ['example.or', false],
  ])('equals(%j) is %s', (other, expected) => {
    expect(td.equals(TrustDomain.parse(other))).toBe(expected)
    expect(TrustDomain.parse(other).equals(td)).toBe(expected)
  })
})

const TD_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789.-_'.split('')
const nameArb = fc.string({ unit: fc.constantFrom(...TD_ALPHABET), minLength: 1, maxLength: 255 })
const anyStringArb = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.string({ unit: 'grapheme', maxLength: 64 }),
  fc.string({ unit: fc.constantFrom(...TD_ALPHABET, ...'A:/@% \0é'.split('')), maxLength: 300 }),
  fc.string({ unit: fc.constantFrom(...TD_ALPHABET, '/'), maxLength: 40 }).map((s) => `spiffe://${s}`),
)

describe('TrustDomain properties', () => {
  it('format∘parse is the identity on generated names, bare or as an ID', () => {
    fc.assert(
      fc.property(nameArb, (name) => {
        expect(TrustDomain.parse(name).toString()).toBe(name)
        expect(TrustDomain.parse(`spiffe://${name}/x`).name).toBe(name)
        expect(TrustDomain.parse(TrustDomain.parse(name).idString()).name).toBe(name)
      }),
    )
  })

  it('any string either parses or throws ERR_TRUST_DOMAIN_INVALID, and a result re-parses equal', () => {
    fc.assert(
      fc.property(anyStringArb, (input) => {
        const code = codeOf(() => TrustDomain.parse(input))
        if (code !== undefined) {
          expect(code).toBe('ERR_TRUST_DOMAIN_INVALID')
          return
        }
        const td = TrustDomain.parse(input)
        expect(TrustDomain.parse(td.name).equals(td)).toBe(true)
      }),
      { numRuns: 2000 },
    )
  })
})
