import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { ErrorCode } from '../../../lib/core/errors.js'
import type { EntryFields, RegistrationEntry } from '../../../lib/core/registration-entry.js'
import { SpiffeId } from '../../../lib/core/spiffe-id.js'
import { TrustDomain } from '../../../lib/core/trust-domain.js'
import { codeOf } from '../../../test/helpers/error-code.js'
import {
  openTempDatastore,
  selectors,
  TEST_START_MS,
  type TempDatastore,
  testEntryFields,
  testId,
} from '../../../test/helpers/temp-datastore.js'

/** The entry as plain JSON: value objects become their strings, so `toEqual` compares them. */
function plain(entry: RegistrationEntry | undefined): unknown {
  return entry === undefined ? undefined : JSON.parse(JSON.stringify(entry))
}

let t: TempDatastore
beforeEach(async () => {
  t = await openTempDatastore()
})
afterEach(async () => {
  await t.cleanup()
})

describe('entries: create and fetch', () => {
  it('stores every field, normalized, and fetches it back', async () => {
    const created = await t.store.entries.create(
      testEntryFields({
        selectors: selectors('unix:uid:1000', 'unix:gid:50', 'unix:uid:1000'),
        x509SvidTtlMs: 3_600_000,
        jwtSvidTtlMs: 300_000,
        dnsNames: ['B.example.org', 'a.example.org'],
        hint: 'web',
        admin: true,
        federatesWith: [TrustDomain.parse('z.org'), TrustDomain.parse('other.org')],
        expiresAtMs: TEST_START_MS + 1000,
      }),
    )
    expect(created.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(created.revision).toBe(0)
    expect(created.createdAtMs).toBe(TEST_START_MS)
    expect(plain(created)).toMatchObject({
      spiffeId: 'spiffe://example.org/web',
      parentId: 'spiffe://example.org/agent',
      selectors: [
        { type: 'unix', value: 'gid:50' },
        { type: 'unix', value: 'uid:1000' },
      ],
      dnsNames: ['b.example.org', 'a.example.org'],
      federatesWith: ['other.org', 'z.org'],
      admin: true,
      hint: 'web',
      expiresAtMs: TEST_START_MS + 1000,
    })
    expect(plain(await t.store.entries.fetch(created.id))).toEqual(plain(created))
  })

  it('returns undefined for an unknown id', async () => {
    expect(await t.store.entries.fetch('00000000-0000-4000-8000-000000000000')).toBeUndefined()
    expect(await t.store.entries.fetch('not an id')).toBeUndefined()
  })

  it('refuses a second entry with the same SPIFFE ID, parent and selector set', async () => {
    await t.store.entries.create(testEntryFields({ selectors: selectors('unix:uid:1', 'unix:gid:2') }))
    const again = testEntryFields({ selectors: selectors('unix:gid:2', 'unix:uid:1'), hint: 'other' })
    expect(await codeOf(t.store.entries.create(again))).toBe('ERR_ENTRY_EXISTS')
    expect(await t.store.entries.count()).toBe(1)
  })

  it.each([
    ['another SPIFFE ID', { spiffeId: testId('/db') }],
    ['another parent', { parentId: testId('/agent2') }],
    ['another selector set', { selectors: selectors('unix:uid:1', 'unix:gid:3') }],
    ['a smaller selector set', { selectors: selectors('unix:uid:1') }],
  ])('accepts an entry that differs by %s', async (_name, overrides) => {
    await t.store.entries.create(testEntryFields({ selectors: selectors('unix:uid:1', 'unix:gid:2') }))
    await t.store.entries.create(
      testEntryFields({ selectors: selectors('unix:uid:1', 'unix:gid:2'), ...overrides }),
    )
    expect(await t.store.entries.count()).toBe(2)
  })

  it.each<[string, Partial<EntryFields>]>([
    ['no selectors', { selectors: [] }],
    ['a SPIFFE ID of another trust domain', { spiffeId: SpiffeId.parse('spiffe://other.org/web') }],
    ['a negative TTL', { x509SvidTtlMs: -1 }],
    ['a malformed DNS name', { dnsNames: ['not a host'] }],
  ])('refuses %s with ERR_ENTRY_INVALID and stores nothing', async (_name, overrides) => {
    expect(await codeOf(t.store.entries.create(testEntryFields(overrides)))).toBe('ERR_ENTRY_INVALID')
    expect(await t.store.entries.count()).toBe(0)
  })
})

describe('entries: batch create', () => {
  it('stores the valid items and reports each bad one with its code', async () => {
    const results = await t.store.entries.createBatch([
      testEntryFields({ spiffeId: testId('/a') }),
      testEntryFields({ spiffeId: testId('/b'), selectors: [] }),
      testEntryFields({ spiffeId: testId('/c') }),
      testEntryFields({ spiffeId: testId('/a') }),
    ])
    expect(results.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual([
      'ok',
      'ERR_ENTRY_INVALID',
      'ok',
      'ERR_ENTRY_EXISTS',
    ])
    const stored = await t.store.entries.list()
    expect(stored.entries.map((e) => e.spiffeId.path).sort()).toEqual(['/a', '/c'])
    for (const r of results)
      if (r.ok) expect(plain(await t.store.entries.fetch(r.entry.id))).toEqual(plain(r.entry))
  })

  it('accepts an empty batch', async () => {
    expect(await t.store.entries.createBatch([])).toEqual([])
  })
})

describe('entries: update', () => {
  it('replaces the fields and increments the revision each time', async () => {
    const e = await t.store.entries.create(testEntryFields())
    t.clock.advance(5000)
    const u1 = await t.store.entries.update(
      e.id,
      testEntryFields({ hint: 'v1', dnsNames: ['x.example.org'] }),
    )
    const u2 = await t.store.entries.update(e.id, testEntryFields({ selectors: selectors('unix:gid:7') }))
    expect([u1.revision, u2.revision]).toEqual([1, 2])
    expect(u2.createdAtMs).toBe(TEST_START_MS)
    const fetched = await t.store.entries.fetch(e.id)
    expect(plain(fetched)).toEqual(plain(u2))
    expect(fetched?.dnsNames).toEqual([])
    expect(fetched?.selectors.map(String)).toEqual(['unix:gid:7'])
  })

  it('applies an update whose expected revision matches', async () => {
    const e = await t.store.entries.create(testEntryFields())
    const u = await t.store.entries.update(e.id, testEntryFields({ hint: 'a' }), { expectedRevision: 0 })
    expect(u.revision).toBe(1)
  })

  it('refuses a stale expected revision and changes nothing', async () => {
    const e = await t.store.entries.create(testEntryFields())
    await t.store.entries.update(e.id, testEntryFields({ hint: 'first' }), { expectedRevision: 0 })
    const stale = t.store.entries.update(e.id, testEntryFields({ hint: 'second' }), { expectedRevision: 0 })
    expect(await codeOf(stale)).toBe('ERR_ENTRY_REVISION_CONFLICT')
    expect((await t.store.entries.fetch(e.id))?.hint).toBe('first')
  })

  it.each<[string, () => Promise<unknown>, ErrorCode]>([
    ['an unknown id', () => t.store.entries.update('nope', testEntryFields()), 'ERR_ENTRY_NOT_FOUND'],
    [
      'invalid fields',
      () => t.store.entries.update('nope', testEntryFields({ selectors: [] })),
      'ERR_ENTRY_INVALID',
    ],
  ])('refuses %s', async (_name, run, code) => {
    expect(await codeOf(run())).toBe(code)
  })

  it('refuses an update that would duplicate another entry, keeping the old rows', async () => {
    await t.store.entries.create(testEntryFields({ spiffeId: testId('/a') }))
    const b = await t.store.entries.create(
      testEntryFields({ spiffeId: testId('/b'), dnsNames: ['b.example.org'] }),
    )
    const dup = t.store.entries.update(b.id, testEntryFields({ spiffeId: testId('/a') }))
    expect(await codeOf(dup)).toBe('ERR_ENTRY_EXISTS')
    expect(plain(await t.store.entries.fetch(b.id))).toEqual(plain(b))
  })
})

describe('entries: delete, prune, count, list by parents', () => {
  it('deletes an entry with its child rows and returns it', async () => {
    const e = await t.store.entries.create(testEntryFields({ dnsNames: ['a.example.org'] }))
    expect(plain(await t.store.entries.delete(e.id))).toEqual(plain(e))
    expect(await t.store.entries.fetch(e.id)).toBeUndefined()
    expect(await codeOf(t.store.entries.delete(e.id))).toBe('ERR_ENTRY_NOT_FOUND')
    await t.store.entries.create(testEntryFields({ dnsNames: ['a.example.org'] }))
  })

  it('prunes the entries expired at the given time', async () => {
    const at = (ms: number | undefined, path: string) =>
      t.store.entries.create(testEntryFields({ spiffeId: testId(path), expiresAtMs: ms }))
    await at(TEST_START_MS + 10, '/past')
    await at(TEST_START_MS + 20, '/edge')
    const future = await at(TEST_START_MS + 30, '/future')
    const never = await at(undefined, '/never')
    expect(await t.store.entries.prune(TEST_START_MS + 20)).toBe(2)
    const left = await t.store.entries.list()
    expect(left.entries.map((e) => e.id).sort()).toEqual([future.id, never.id].sort())
  })

  it('lists every entry under a set of parents', async () => {
    const parents = ['/agent1', '/agent2', '/alias', '/other']
    for (const p of parents) {
      for (const w of ['/w1', '/w2']) {
        await t.store.entries.create(testEntryFields({ parentId: testId(p), spiffeId: testId(p + w) }))
      }
    }
    const found = await t.store.entries.listByParents([
      testId('/agent1'),
      testId('/alias'),
      testId('/agent1'),
    ])
    expect(found.map((e) => e.spiffeId.path).sort()).toEqual([
      '/agent1/w1',
      '/agent1/w2',
      '/alias/w1',
      '/alias/w2',
    ])
    expect(await t.store.entries.listByParents([])).toEqual([])
    expect(await t.store.entries.count({ parentId: testId('/other') })).toBe(2)
  })
})
