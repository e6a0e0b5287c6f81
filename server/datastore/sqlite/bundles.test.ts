import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { TrustDomain } from '../../../lib/core/trust-domain.js'
import { codeOf } from '../../../test/helpers/error-code.js'
import { openTempDatastore, TEST_START_MS, type TempDatastore } from '../../../test/helpers/temp-datastore.js'

const own = TrustDomain.parse('example.org')
const other = TrustDomain.parse('other.org')
const doc = (n: number) => JSON.stringify({ keys: [], spiffe_sequence: n })

let t: TempDatastore
beforeEach(async () => {
  t = await openTempDatastore()
})
afterEach(async () => {
  await t.cleanup()
})

describe('bundles', () => {
  it('sets, replaces, fetches and lists bundles per trust domain', async () => {
    await t.store.bundles.set(own, doc(1), 1n)
    await t.store.bundles.set(other, doc(7), 7n)
    t.clock.advance(10)
    const replaced = await t.store.bundles.set(own, doc(2), 2n)
    expect(replaced.updatedAtMs).toBe(TEST_START_MS + 10)
    const fetched = await t.store.bundles.fetch(own)
    expect(fetched?.document).toBe(doc(2))
    expect(fetched?.sequence).toBe(2n)
    expect(fetched?.trustDomain.equals(own)).toBe(true)
    const all = await t.store.bundles.list()
    expect(all.map((b) => [b.trustDomain.name, b.sequence])).toEqual([
      ['example.org', 2n],
      ['other.org', 7n],
    ])
  })

  it('keeps sequence numbers beyond 2^63 exactly', async () => {
    const big = 2n ** 64n - 1n
    await t.store.bundles.set(other, doc(0), big)
    await t.reopen()
    expect((await t.store.bundles.fetch(other))?.sequence).toBe(big)
  })

  it.each([-1n, 2n ** 64n])('refuses sequence %s', async (sequence) => {
    expect(await codeOf(t.store.bundles.set(other, doc(0), sequence))).toBe('ERR_BUNDLE_MALFORMED')
  })

  it('deletes a bundle, then reports it missing', async () => {
    await t.store.bundles.set(other, doc(1), 1n)
    await t.store.bundles.delete(other)
    expect(await t.store.bundles.fetch(other)).toBeUndefined()
    expect(await codeOf(t.store.bundles.delete(other))).toBe('ERR_BUNDLE_NOT_FOUND')
  })
})

describe('key journal', () => {
  it('is empty at first, then holds the last saved document across a reopen', async () => {
    expect(await t.store.keyJournal.load()).toBeUndefined()
    await t.store.keyJournal.save('{"version":1,"a":1}')
    await t.store.keyJournal.save('{"version":1,"a":2}')
    await t.reopen()
    expect(await t.store.keyJournal.load()).toBe('{"version":1,"a":2}')
  })
})
