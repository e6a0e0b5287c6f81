import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { EntryFields } from '../../../lib/core/registration-entry.js'
import { matchSelectors, type SelectorMatchMode } from '../../../lib/core/selector.js'
import { TrustDomain } from '../../../lib/core/trust-domain.js'
import { codeOf } from '../../../test/helpers/error-code.js'
import {
  openTempDatastore,
  selectors,
  type TempDatastore,
  testEntryFields,
  testId,
} from '../../../test/helpers/temp-datastore.js'
import type { EntryFilter } from '../ports.js'
import { encodePageToken } from './page-token.js'

const tds = (...names: string[]) => names.map((n) => TrustDomain.parse(n))

/** Named entries; the filters below are checked against their names. */
const FIXTURES: Record<string, Partial<EntryFields>> = {
  a: { selectors: selectors('unix:uid:1'), hint: 'front' },
  b: { selectors: selectors('unix:uid:1', 'unix:gid:1'), federatesWith: tds('x.org') },
  c: {
    selectors: selectors('unix:uid:1', 'unix:gid:1', 'unix:path:/bin/p'),
    federatesWith: tds('x.org', 'y.org'),
  },
  d: { selectors: selectors('unix:gid:2'), parentId: testId('/agent2'), hint: 'front' },
}

let t: TempDatastore
const names = new Map<string, string>() // entry id -> fixture name

beforeAll(async () => {
  t = await openTempDatastore()
  for (const [name, overrides] of Object.entries(FIXTURES)) {
    const e = await t.store.entries.create(testEntryFields({ spiffeId: testId(`/${name}`), ...overrides }))
    names.set(e.id, name)
  }
})
afterAll(async () => {
  await t.cleanup()
})

async function listNames(filter: EntryFilter): Promise<string[]> {
  const page = await t.store.entries.list(filter)
  return page.entries.map((e) => names.get(e.id) ?? '?').sort()
}

describe('entry filters', () => {
  it.each<[string, EntryFilter, string[]]>([
    ['no filter', {}, ['a', 'b', 'c', 'd']],
    ['spiffeId', { spiffeId: testId('/c') }, ['c']],
    ['spiffeId unknown', { spiffeId: testId('/zzz') }, []],
    ['parentId', { parentId: testId('/agent2') }, ['d']],
    ['hint', { hint: 'front' }, ['a', 'd']],
    ['hint and parentId', { hint: 'front', parentId: testId('/agent') }, ['a']],
  ])('%s', async (_name, filter, expected) => {
    expect(await listNames(filter)).toEqual(expected)
    expect(await t.store.entries.count(filter)).toBe(expected.length)
  })

  it.each<[SelectorMatchMode, string[], string[]]>([
    ['exact', ['unix:uid:1', 'unix:gid:1'], ['b']],
    ['exact', ['unix:uid:1'], ['a']],
    ['subset', ['unix:uid:1', 'unix:gid:1'], ['a', 'b']],
    ['subset', ['unix:gid:1'], []],
    ['superset', ['unix:uid:1', 'unix:gid:1'], ['b', 'c']],
    ['superset', ['unix:uid:1'], ['a', 'b', 'c']],
    ['any', ['unix:gid:1', 'unix:gid:2'], ['b', 'c', 'd']],
    ['any', ['unix:uid:9'], []],
    ['exact', [], []],
    ['subset', [], []],
    ['superset', [], []],
    ['any', [], []],
  ])('selectors %s %j', async (mode, set, expected) => {
    const filter: EntryFilter = { selectors: { set: selectors(...set), mode } }
    expect(await listNames(filter)).toEqual(expected)
    expect(await t.store.entries.count(filter)).toBe(expected.length)
  })

  it.each<[SelectorMatchMode, string[], string[]]>([
    ['exact', ['x.org'], ['b']],
    ['subset', ['x.org'], ['b']],
    ['subset', ['x.org', 'y.org', 'z.org'], ['b', 'c']],
    ['superset', ['x.org'], ['b', 'c']],
    ['any', ['y.org', 'z.org'], ['c']],
  ])('federatesWith %s %j', async (mode, set, expected) => {
    expect(await listNames({ federatesWith: { set: tds(...set), mode } })).toEqual(expected)
  })

  it('combines a selector filter with the others', async () => {
    const filter: EntryFilter = {
      selectors: { set: selectors('unix:uid:1'), mode: 'superset' },
      federatesWith: { set: tds('y.org'), mode: 'any' },
      parentId: testId('/agent'),
    }
    expect(await listNames(filter)).toEqual(['c'])
  })

  it.each<SelectorMatchMode>(['exact', 'subset', 'superset', 'any'])(
    'selectors %s agrees with matchSelectors',
    async (mode) => {
      const all = (await t.store.entries.list()).entries
      const queries = [
        ['unix:uid:1', 'unix:gid:1', 'unix:gid:2'],
        ['unix:path:/bin/p'],
        ['unix:gid:1', 'unix:uid:1', 'unix:gid:1'],
      ]
      for (const q of queries) {
        const query = selectors(...q)
        const expected = all
          .filter((e) => matchSelectors(e.selectors, query, mode))
          .map((e) => e.id)
          .sort()
        const found = (await t.store.entries.list({ selectors: { set: query, mode } })).entries.map(
          (e) => e.id,
        )
        expect(found.sort()).toEqual(expected)
      }
    },
  )

  it('refuses an unknown match mode', async () => {
    const filter = { selectors: { set: selectors('unix:uid:1'), mode: 'most' as SelectorMatchMode } }
    expect(await codeOf(t.store.entries.list(filter))).toBe('ERR_SELECTOR_INVALID')
  })
})

describe('entry paging', () => {
  const TOTAL = 1234
  let paged: TempDatastore

  beforeAll(async () => {
    paged = await openTempDatastore()
    const items = Array.from({ length: TOTAL }, (_, i) =>
      testEntryFields({ spiffeId: testId(`/w${i}`), parentId: testId(`/agent${i % 3}`) }),
    )
    const results = await paged.store.entries.createBatch(items)
    expect(results.every((r) => r.ok)).toBe(true)
  })
  afterAll(async () => {
    await paged.cleanup()
  })

  async function pageThrough(
    filter: EntryFilter,
    pageSize: number,
  ): Promise<{ ids: string[]; pages: number }> {
    const ids: string[] = []
    let pageToken: string | undefined
    let pages = 0
    do {
      const page = await paged.store.entries.list(filter, { pageSize, ...(pageToken ? { pageToken } : {}) })
      expect(page.entries.length).toBeLessThanOrEqual(pageSize)
      ids.push(...page.entries.map((e) => e.id))
      pageToken = page.nextPageToken
      pages++
    } while (pageToken !== undefined)
    return { ids, pages }
  }

  it('returns each of 1234 entries exactly once in pages of 100', async () => {
    const { ids, pages } = await pageThrough({}, 100)
    expect(pages).toBe(13)
    expect(ids).toHaveLength(TOTAL)
    expect(new Set(ids).size).toBe(TOTAL)
    expect(await paged.store.entries.count()).toBe(TOTAL)
  })

  it('pages through a filtered listing', async () => {
    const { ids } = await pageThrough({ parentId: testId('/agent1') }, 100)
    expect(new Set(ids).size).toBe(411)
  })

  it.each<[number | undefined, number]>([
    [undefined, 500],
    [0, 500],
    [1, 1],
    [5000, 1000],
  ])('page size %s gives %i entries', async (pageSize, expected) => {
    const page = await paged.store.entries.list({}, pageSize === undefined ? {} : { pageSize })
    expect(page.entries).toHaveLength(expected)
    expect(page.nextPageToken).toBeTypeOf('string')
  })

  it.each([-1, 1.5, Number.NaN])('refuses page size %s', async (pageSize) => {
    expect(await codeOf(paged.store.entries.list({}, { pageSize }))).toBe('ERR_REQUEST_INVALID')
  })

  const uuid = '00000000-0000-4000-8000-000000000000'
  it.each<[string, string]>([
    ['junk characters', 'not a token!'],
    ['padding', `${encodePageToken('entries', uuid)}=`],
    [
      'standard base64',
      Buffer.from(`e1:${uuid}`)
        .toString('base64')
        .replace(/[A-Za-z0-9]$/, '+'),
    ],
    ['non-canonical trailing bits', `${encodePageToken('entries', uuid).slice(0, -1)}B`],
    ['no prefix', Buffer.from(uuid).toString('base64url')],
    ['an agents token', encodePageToken('agents', 'spiffe://example.org/agent')],
    ['a key that is no entry id', encodePageToken('entries', "x' OR 1=1 --")],
    ['invalid UTF-8', Buffer.from([0x65, 0x31, 0x3a, 0xff, 0xfe]).toString('base64url')],
    ['a huge token', 'A'.repeat(10_000)],
  ])('refuses a page token with %s', async (_name, pageToken) => {
    expect(await codeOf(paged.store.entries.list({}, { pageToken }))).toBe('ERR_PAGE_TOKEN_INVALID')
  })

  it('treats an empty page token as the first page', async () => {
    const first = await paged.store.entries.list({}, { pageSize: 3 })
    const again = await paged.store.entries.list({}, { pageSize: 3, pageToken: '' })
    expect(again.entries.map((e) => e.id)).toEqual(first.entries.map((e) => e.id))
  })
})
