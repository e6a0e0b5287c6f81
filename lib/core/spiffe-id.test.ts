import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type ErrorCode, IdentityError } from './errors.js'
import { SpiffeId } from './spiffe-id.js'
import { TrustDomain } from './trust-domain.js'

const td = TrustDomain.parse('example.org')
const LONG_PATH = `/${'a'.repeat(2048 - 'spiffe://example.org/'.length + 1)}` // one byte over the cap
const LONG_TD = 'a'.repeat(256)

function codeOf(fn: () => unknown): ErrorCode | undefined {
  try {
    fn()
  } catch (err) {
    if (err instanceof IdentityError) return err.code
    throw err
  }
  return undefined
}

function label(input: string): string {
  return input.length > 60 ? `${input.slice(0, 24)}… (${input.length} bytes)` : JSON.stringify(input)
}
const named = (inputs: string[]) => inputs.map((input) => ({ input, name: label(input) }))

type Verdict = { trustDomain: string; path: string; issuable: boolean } | 'invalid'
const ok = (trustDomain: string, path: string, issuable = true): Verdict => ({ trustDomain, path, issuable })

// spiffe-spec.md §1 "Example IDs", every row; rows listing several inputs have one line each.
const vectors: Array<[row: string, input: string, verdict: Verdict]> = [
  ['1', 'spiffe://example.org/ns/prod/sa/web', ok('example.org', '/ns/prod/sa/web')],
  ['2', 'spiffe://staging.example.com/payments/mysql', ok('staging.example.com', '/payments/mysql')],
  ['3', 'spiffe://k8s_west.example.com/a', ok('k8s_west.example.com', '/a')],
  ['4', 'spiffe://10.0.0.1/svc', ok('10.0.0.1', '/svc')],
  ['5', 'spiffe://example.org/Svc_A/v1.2-beta', ok('example.org', '/Svc_A/v1.2-beta')],
  ['6', 'spiffe://example.org/.hidden/...', ok('example.org', '/.hidden/...')],
  [
    '7',
    'spiffe://example.org/9eebccd2-12bf-40a6-b262-65fe0487d453',
    ok('example.org', '/9eebccd2-12bf-40a6-b262-65fe0487d453'),
  ],
  ['8', 'spiffe://example.org', ok('example.org', '')],
  ['9', 'spiffe://example.org/', 'invalid'],
  ['10', 'spiffe://example.org/a/', 'invalid'],
  ['11', 'spiffe://example.org//a', 'invalid'],
  ['12', 'spiffe://example.org/a/./b', 'invalid'],
  ['12', 'spiffe://example.org/../a', 'invalid'],
  ['13', 'spiffe://Example.org/a', 'invalid'],
  ['14', 'SPIFFE://example.org/a', 'invalid'],
  ['15', 'spiffe://example.org:8443/a', 'invalid'],
  ['16', 'spiffe://user@example.org/a', 'invalid'],
  ['17', 'spiffe://example.org/a?x=1', 'invalid'],
  ['17', 'spiffe://example.org/a#f', 'invalid'],
  ['18', 'spiffe://example.org/a%20b', 'invalid'],
  ['18', 'spiffe://%62ad/a', 'invalid'],
  ['19', 'spiffe:///a', 'invalid'],
  ['19', 'spiffe://', 'invalid'],
  ['20', 'spiffe://[::1]/a', 'invalid'],
  ['21', 'spiffe://example.org/café', 'invalid'],
  ['21', 'spiffe://example.org/a b', 'invalid'],
  ['22', 'spiffe://example.org/a:b', 'invalid'],
  ['23', 'spiffe:/example.org/a', 'invalid'],
  ['23', 'https://example.org/a', 'invalid'],
  ['24', 'spiffe://a..b/x', ok('a..b', '/x', false)],
  ['25', `spiffe://example.org${LONG_PATH}`, 'invalid'],
  ['25', `spiffe://${LONG_TD}/x`, 'invalid'],
]

describe('SpiffeId.parse: spec §1 example vectors', () => {
  it.each(vectors.map(([row, input, verdict]) => ({ row, name: label(input), input, verdict })))(
    'row $row: $name',
    ({ input, verdict }) => {
      if (verdict === 'invalid') {
        expect(codeOf(() => SpiffeId.parse(input))).toBe('ERR_ID_INVALID')
        return
      }
      const id = SpiffeId.parse(input)
      expect(id.toString()).toBe(input)
      expect(id.trustDomain.name).toBe(verdict.trustDomain)
      expect(id.path).toBe(verdict.path)
      expect(id.isRoot).toBe(verdict.path === '')
      expect(id.issuanceProblem() === undefined).toBe(verdict.issuable)
      expect(SpiffeId.fromPath(id.trustDomain, id.path).equals(id)).toBe(true)
    },
  )
})

describe('SpiffeId.parse: go-spiffe behaviours (spec §1, §7.A)', () => {
  it('path characters are exactly [A-Za-z0-9._-] (checked over U+0000..U+017F)', () => {
    const accepted = Array.from({ length: 0x180 }, (_, c) => String.fromCharCode(c)).filter(
      (c) => c !== '/' && codeOf(() => SpiffeId.parse(`spiffe://example.org/a${c}b`)) === undefined,
    )
    expect(accepted.join('')).toBe('-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz')
  })

  it.each([
    ['', 'empty input'],
    ['spiffe:', 'scheme only'],
    ['Spiffe://example.org/a', 'mixed-case scheme'],
    [' spiffe://example.org/a', 'leading space'],
    ['spiffe://example.org/a\n', 'trailing newline'],
    ['spiffe://example.org/a\0', 'NUL'],
    ['spiffe://example.org\\a', 'backslash'],
  ])('refuses %j (%s)', (input) => {
    expect(codeOf(() => SpiffeId.parse(input))).toBe('ERR_ID_INVALID')
  })

  it('accepts exactly 2048 bytes and refuses 2049', () => {
    const exact = `spiffe://example.org${LONG_PATH.slice(0, -1)}`
    expect(exact.length).toBe(2048)
    expect(SpiffeId.parse(exact).toString()).toBe(exact)
    expect(codeOf(() => SpiffeId.parse(`${exact}b`))).toBe('ERR_ID_INVALID')
    expect(SpiffeId.fromPath(td, LONG_PATH.slice(0, -1)).toString()).toBe(exact)
  })

  it('refuses a non-string from untyped callers; mustParse checks like parse', () => {
    expect(codeOf(() => SpiffeId.parse(42 as unknown as string))).toBe('ERR_ID_INVALID')
    expect(SpiffeId.mustParse('spiffe://example.org/a').path).toBe('/a')
    expect(codeOf(() => SpiffeId.mustParse('spiffe://example.org/'))).toBe('ERR_ID_INVALID')
  })
})

describe('SpiffeId.fromPath and fromSegments', () => {
  it.each(['', '/a', '/a/b.c', '/...', '/-_.'])('fromPath(%j) builds spiffe://example.org + path', (path) => {
    const id = SpiffeId.fromPath(td, path)
    expect(id.toString()).toBe(`spiffe://example.org${path}`)
    expect(id.trustDomain).toBe(td)
  })

  it.each(named(['a', 'a/b', '/', '/a/', '//a', '/./a', '/a/..', '/a b', '/a?b', '/é', LONG_PATH]))(
    'fromPath($name) is refused',
    ({ input }) => expect(codeOf(() => SpiffeId.fromPath(td, input))).toBe('ERR_ID_INVALID'),
  )

  it.each([
    [[], 'spiffe://example.org'],
    [['a'], 'spiffe://example.org/a'],
    [['a', 'B', '...'], 'spiffe://example.org/a/B/...'],
  ])('fromSegments(%j)', (segments, expected) => {
    expect(SpiffeId.fromSegments(td, ...segments).toString()).toBe(expected)
  })

  it.each([['a/b'], [''], ['.'], ['..'], ['a', ''], ['a b'], ['a:b']])(
    'fromSegments(%j) is refused',
    (...segs) => {
      expect(codeOf(() => SpiffeId.fromSegments(td, ...segs))).toBe('ERR_ID_INVALID')
    },
  )
})

describe('SpiffeId accessors', () => {
  const id = SpiffeId.parse('spiffe://example.org/ns/prod')
  const root = SpiffeId.parse('spiffe://example.org')

  it('append adds segments in the same trust domain', () => {
    expect(id.append('sa', 'web').toString()).toBe('spiffe://example.org/ns/prod/sa/web')
    expect(root.append('a').toString()).toBe('spiffe://example.org/a')
    expect(id.append().equals(id)).toBe(true)
    expect(id.append('x').memberOf(td)).toBe(true)
    expect(id.toString()).toBe('spiffe://example.org/ns/prod')
  })

  it.each(named(['x/y', '..', '', 'a b', LONG_PATH.slice(1)]))('append($name) is refused', ({ input }) =>
    expect(codeOf(() => id.append(input))).toBe('ERR_ID_INVALID'),
  )

  it.each([
    ['example.org', true],
    ['example.or', false],
    ['example.org.evil', false],
    ['xample.org', false],
    ['other.org', false],
  ])('memberOf(%s) is %s', (name, expected) => {
    expect(id.memberOf(TrustDomain.parse(name))).toBe(expected)
    expect(root.memberOf(TrustDomain.parse(name))).toBe(expected)
  })

  it('segments splits the path and returns a fresh array', () => {
    expect(root.segments()).toEqual([])
    const segs = id.segments()
    expect(segs).toEqual(['ns', 'prod'])
    segs.push('x')
    expect(id.segments()).toEqual(['ns', 'prod'])
  })

  it.each([
    ['spiffe://example.org/ns/prod', true],
    ['spiffe://example.org/ns/Prod', false],
    ['spiffe://example.org/ns', false],
    ['spiffe://example.com/ns/prod', false],
  ])('equals(%s) is %s', (other, expected) => {
    expect(id.equals(SpiffeId.parse(other))).toBe(expected)
    expect(SpiffeId.parse(other).equals(id)).toBe(expected)
  })

  it('serializes to its URI and exposes a stable trust domain', () => {
    expect(JSON.stringify({ id })).toBe('{"id":"spiffe://example.org/ns/prod"}')
    expect(id.trustDomain).toBe(id.trustDomain)
    expect(id.trustDomain.equals(td)).toBe(true)
  })
})

const TD_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789.-_'.split('')
const PATH_ALPHABET = [...TD_ALPHABET, ...'ABCDEFGHIJKLMNOPQRSTUVWXYZ'.split('')]
const tdArb = fc.string({ unit: fc.constantFrom(...TD_ALPHABET), minLength: 1, maxLength: 64 })
const segArb = fc
  .string({ unit: fc.constantFrom(...PATH_ALPHABET), minLength: 1, maxLength: 24 })
  .filter((s) => s !== '.' && s !== '..')
const idPartsArb = fc.tuple(tdArb, fc.array(segArb, { maxLength: 10 }))
/** Mostly valid characters plus the ones that matter, so generated strings reach deep into the rules. */
const nearIdArb = fc.string({ unit: fc.constantFrom(...'aZ9._-/:@%?#A é\0'.split('')), maxLength: 40 })
const anyStringArb = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 64 }),
  fc.string({ unit: 'grapheme', maxLength: 64 }),
  nearIdArb.map((s) => `spiffe://${s}`),
  fc.string({ unit: fc.constantFrom(...PATH_ALPHABET, '/'), maxLength: 3000 }).map((s) => `spiffe://${s}`),
)
/** Spec §1 plus our caps, stated apart from the parser (split, not scanned) to check it against. */
function isValidByModel(input: string): boolean {
  if (!input.startsWith('spiffe://') || input.length > 2048) return false
  const [name = '', ...segs] = input.slice('spiffe://'.length).split('/')
  const isSegment = (seg: string) => /^[A-Za-z0-9._-]+$/.test(seg) && seg !== '.' && seg !== '..'
  return /^[a-z0-9._-]{1,255}$/.test(name) && segs.every(isSegment)
}

describe('SpiffeId properties', () => {
  it('format∘parse is the identity on generated valid IDs', () => {
    fc.assert(
      fc.property(idPartsArb, ([name, segs]) => {
        const text = `spiffe://${name}${segs.map((s) => `/${s}`).join('')}`
        const id = SpiffeId.parse(text)
        expect(id.toString()).toBe(text)
        expect(id.trustDomain.name).toBe(name)
        expect(id.segments()).toEqual(segs)
        expect(SpiffeId.fromSegments(TrustDomain.parse(name), ...segs).equals(id)).toBe(true)
      }),
    )
  })

  it('any string either parses or throws ERR_ID_INVALID, exactly as the model says', () => {
    fc.assert(
      fc.property(anyStringArb, (input) => {
        expect(codeOf(() => SpiffeId.parse(input))).toBe(isValidByModel(input) ? undefined : 'ERR_ID_INVALID')
      }),
      { numRuns: 2000 },
    )
  })

  it('a parsed ID always re-parses to an equal ID', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          anyStringArb,
          nearIdArb.map((s) => `spiffe://a/${s}`),
        ),
        (input) => {
          let id: SpiffeId
          try {
            id = SpiffeId.parse(input)
          } catch {
            return
          }
          expect(SpiffeId.parse(id.toString()).equals(id)).toBe(true)
          expect(SpiffeId.fromPath(id.trustDomain, id.path).equals(id)).toBe(true)
        },
      ),
      { numRuns: 2000 },
    )
  })

  it('a huge input is refused quickly', () => {
    expect(codeOf(() => SpiffeId.parse(`spiffe://example.org/${'a'.repeat(10_000_000)}`))).toBe(
      'ERR_ID_INVALID',
    )
  })
})
