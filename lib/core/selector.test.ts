import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type ErrorCode, IdentityError } from './errors.js'
import {
  compareSelectors,
  matchSelectors,
  normalizeSelectors,
  Selector,
  type SelectorMatchMode,
  selectorsAdmit,
} from './selector.js'

function codeOf(fn: () => unknown): ErrorCode | undefined {
  try {
    fn()
  } catch (err) {
    if (err instanceof IdentityError) return err.code
    throw err
  }
  return undefined
}

const HEX64 = '0123456789abcdef'.repeat(4)
/** Rows `prefix + suffix` for each suffix, so the tables stay short; `name` keeps long rows readable. */
const rows = (table: Record<string, string[]>) =>
  Object.entries(table).flatMap(([prefix, suffixes]) =>
    suffixes.map((suffix) => ({
      input: prefix + suffix,
      name: JSON.stringify(prefix + suffix).slice(0, 70),
    })),
  )

describe('Selector.parse', () => {
  it.each(
    rows({
      'unix:uid:': ['0', '1000', '4294967295'],
      'unix:': ['gid:0', 'supplementary_gid:27', 'group:docker', 'supplementary_group:wheel'],
      'unix:user:': ['root', 'www-data', 'josé'],
      'unix:path:': ['/usr/bin/python3', '/', '/opt/my app/bin', '/a:b', '/.hidden/...'],
      'unix:sha256:': [HEX64],
      'unix:cgroup:': ['/system.slice/foo.service', '/'],
      'k8s:': ['ns:default', 'pod-label:app:web', 'a'.repeat(1020), 'é'.repeat(510), '😀'],
      '': ['docker:label:a b', 'spiffe_id:spiffe://example.org/x', 'x:y', `${'t'.repeat(64)}:v`],
    }),
  )('accepts $name', ({ input }) => {
    const s = Selector.parse(input)
    expect(s.toString()).toBe(input)
    expect(`${s.type}:${s.value}`).toBe(input)
    expect(Selector.from(s.type, s.value).equals(s)).toBe(true)
  })

  it.each(
    rows({
      '': ['', 'unix', ':uid:1', 'Unix:uid:1', 'un ix:uid:1', 'unix.x:uid:1', `${'t'.repeat(65)}:v`],
      'unix:': [
        '',
        'uid',
        'pid:1',
        'UID:1',
        'constructor:x',
        '__proto__:x',
        'gid:١٢',
        'supplementary_gid:1.0',
      ],
      'unix:uid:': ['', '-1', '01', '00', '4294967296', '99999999999', '1e3', ' 1', '+1', '0x10'],
      'unix:user:': ['', 'a b', 'a:b', 'a\tb'],
      'unix:group:': ['\u00a0x'],
      'unix:path:': ['', 'relative/bin', '//a', '/a//b', '/a/./b', '/a/../b', '/a/', '/a/.', '/..'],
      'unix:sha256:': [HEX64.toUpperCase(), HEX64.slice(1), `${HEX64}0`, `${HEX64.slice(1)}g`],
      'unix:cgroup:': ['system.slice', '/a/'],
      'k8s:': ['', 'a\0b', 'a\nb', '\u0085', '\x7f', '\ud800', '\udc00x', 'a'.repeat(1021), 'é'.repeat(511)],
    }),
  )('refuses $name', ({ input }) => {
    expect(codeOf(() => Selector.parse(input))).toBe('ERR_SELECTOR_INVALID')
  })

  it('refuses non-strings from untyped callers', () => {
    expect(codeOf(() => Selector.parse(7 as unknown as string))).toBe('ERR_SELECTOR_INVALID')
    expect(codeOf(() => Selector.from('unix', null as unknown as string))).toBe('ERR_SELECTOR_INVALID')
  })
})

describe('Selector values', () => {
  const uid = Selector.parse('unix:uid:1000')

  it('exposes type and value, and serializes as SPIRE does', () => {
    expect(uid.type).toBe('unix')
    expect(uid.value).toBe('uid:1000')
    expect(JSON.stringify(uid)).toBe('{"type":"unix","value":"uid:1000"}')
  })

  it.each([
    ['unix', 'uid:1000', true],
    ['unix', 'uid:1001', false],
    ['unix', 'gid:1000', false],
    ['other', 'uid:1000', false],
  ])('equals(from(%s, %s)) is %s', (type, value, expected) => {
    expect(uid.equals(Selector.from(type, value))).toBe(expected)
  })

  it.each([
    ['unix:x', 'y'],
    ['k8s', ''],
    ['', 'v'],
  ])('from(%j, %j) is refused', (type, value) => {
    expect(codeOf(() => Selector.from(type, value))).toBe('ERR_SELECTOR_INVALID')
  })
})

const sel = (...texts: string[]) => texts.map((t) => Selector.parse(`k8s:${t}`))
const texts = (list: readonly Selector[]) => list.map((s) => s.toString())

describe('normalizeSelectors', () => {
  it('dedupes and sorts by text, code unit order', () => {
    const input = sel('b', 'a', 'B', 'b', 'a:1', 'a')
    expect(texts(normalizeSelectors(input))).toEqual(['k8s:B', 'k8s:a', 'k8s:a:1', 'k8s:b'])
    expect(texts(input)).toEqual(['k8s:b', 'k8s:a', 'k8s:B', 'k8s:b', 'k8s:a:1', 'k8s:a'])
    expect(normalizeSelectors([])).toEqual([])
    expect(compareSelectors(Selector.parse('a:x'), Selector.parse('a:x'))).toBe(0)
  })
})

describe('matchSelectors and selectorsAdmit', () => {
  const E = sel('a', 'b')
  it.each<[string, Selector[], Selector[], SelectorMatchMode, boolean]>([
    ['same set', E, sel('b', 'a', 'a'), 'exact', true],
    ['fewer', E, sel('a'), 'exact', false],
    ['more', E, sel('a', 'b', 'c'), 'exact', false],
    ['entry ⊆ query', E, sel('a', 'b', 'c'), 'subset', true],
    ['equal sets', E, sel('a', 'b'), 'subset', true],
    ['entry ⊄ query', E, sel('a'), 'subset', false],
    ['entry ⊇ query', E, sel('a'), 'superset', true],
    ['equal sets', E, sel('b', 'a'), 'superset', true],
    ['entry ⊉ query', E, sel('a', 'c'), 'superset', false],
    ['one shared', E, sel('c', 'a'), 'any', true],
    ['none shared', E, sel('c'), 'any', false],
    ['empty entry', [], sel('a'), 'subset', false],
    ['empty query', E, [], 'superset', false],
    ['both empty', [], [], 'exact', false],
  ])('%s: %s', (_, entry, query, mode, expected) => {
    expect(matchSelectors(entry, query, mode)).toBe(expected)
  })

  it('refuses an unknown mode from untyped callers', () => {
    expect(codeOf(() => matchSelectors(E, E, 'all' as SelectorMatchMode))).toBe('ERR_SELECTOR_INVALID')
  })

  it.each<[string, Selector[], Selector[], boolean]>([
    ['all entry selectors present', sel('a'), sel('x', 'a', 'y'), true],
    ['several, all present', sel('a', 'b'), sel('b', 'c', 'a'), true],
    ['one missing', sel('a', 'b'), sel('a', 'c'), false],
    ['workload has none', sel('a'), [], false],
    ['entry has none: admits nobody', [], sel('a'), false],
  ])('selectorsAdmit: %s', (_, entry, workload, expected) => {
    expect(selectorsAdmit(entry, workload)).toBe(expected)
  })
})

const lower = 'abcdefghijklmnopqrstuvwxyz'
const nameArb = fc.string({
  unit: fc.constantFrom(...`${lower}0123456789_.-`.split('')),
  minLength: 1,
  maxLength: 32,
})
const segArb = nameArb.filter((s) => s !== '.' && s !== '..')
const validTextArb = fc
  .oneof(
    fc
      .tuple(fc.constantFrom('uid', 'gid', 'supplementary_gid'), fc.nat({ max: 0xffff_ffff }))
      .map(([k, n]) => `${k}:${n}`),
    fc.tuple(fc.constantFrom('user', 'group', 'supplementary_group'), nameArb).map(([k, n]) => `${k}:${n}`),
    fc
      .tuple(fc.constantFrom('path', 'cgroup'), fc.array(segArb, { minLength: 1, maxLength: 6 }))
      .map(([k, segs]) => `${k}:/${segs.join('/')}`),
    fc
      .string({ unit: fc.constantFrom(...'0123456789abcdef'.split('')), minLength: 64, maxLength: 64 })
      .map((h) => `sha256:${h}`),
  )
  .map((v) => `unix:${v}`)
const genericTextArb = fc
  .tuple(
    fc.string({ unit: fc.constantFrom(...`${lower}0123456789_-`.split('')), minLength: 1, maxLength: 64 }),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 200 }),
  )
  .filter(([type, value]) => type !== 'unix' && !/[\p{Cc}]/u.test(value))
  .map(([type, value]) => `${type}:${value}`)
const anyStringArb = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.string({ unit: 'grapheme', maxLength: 80 }),
  fc.string({ unit: fc.constantFrom(...'unix:uidpath/0123 \0.'.split('')), maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 1100 }).map((s) => `unix:${s}`),
  fc.string({ unit: 'binary', maxLength: 1100 }).map((s) => `k8s:${s}`),
)

describe('Selector properties', () => {
  it('parse∘toString is the identity on generated valid selectors', () => {
    fc.assert(
      fc.property(fc.oneof(validTextArb, genericTextArb), (text) => {
        const s = Selector.parse(text)
        expect(s.toString()).toBe(text)
        expect(Selector.parse(s.toString()).equals(s)).toBe(true)
      }),
    )
  })

  it('any string yields a selector or ERR_SELECTOR_INVALID, and a result re-parses equal', () => {
    fc.assert(
      fc.property(anyStringArb, (input) => {
        const code = codeOf(() => Selector.parse(input))
        if (code !== undefined) {
          expect(code).toBe('ERR_SELECTOR_INVALID')
          return
        }
        expect(Selector.parse(Selector.parse(input).toString()).toString()).toBe(input)
      }),
      { numRuns: 2000 },
    )
  })

  const poolArb = fc.array(fc.constantFrom(...sel('a', 'b', 'c', 'd')), { maxLength: 6 })
  it('normalize is idempotent and the match modes agree with each other', () => {
    fc.assert(
      fc.property(poolArb, poolArb, (e, q) => {
        expect(normalizeSelectors(normalizeSelectors(e))).toEqual(normalizeSelectors(e))
        expect(matchSelectors(e, q, 'subset')).toBe(matchSelectors(q, e, 'superset'))
        const both = matchSelectors(e, q, 'subset') && matchSelectors(e, q, 'superset')
        expect(matchSelectors(e, q, 'exact')).toBe(both)
        expect(matchSelectors(e, q, 'any')).toBe(matchSelectors(q, e, 'any'))
        expect(selectorsAdmit(e, q)).toBe(matchSelectors(e, q, 'subset'))
        expect(matchSelectors(e, q, 'exact')).toBe(matchSelectors(normalizeSelectors(e), q, 'exact'))
      }),
    )
  })
})
