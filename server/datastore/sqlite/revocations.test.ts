import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { codeOf } from '../../../test/helpers/error-code.js'
import { openTempDatastore, TEST_START_MS, type TempDatastore } from '../../../test/helpers/temp-datastore.js'
import type { StoredRevocation } from '../ports.js'

const HOUR = 3_600_000
let t: TempDatastore
beforeEach(async () => {
  t = await openTempDatastore()
})
afterEach(async () => {
  await t.cleanup()
})

function revocation(over: Partial<StoredRevocation> = {}): StoredRevocation {
  return {
    kind: 'jwt-id',
    value: 'j-1',
    issuedBeforeMs: 0,
    revokedAtMs: TEST_START_MS,
    keepUntilMs: TEST_START_MS + HOUR,
    reason: 'leaked',
    revokedBy: 'admin uid 0',
    ...over,
  }
}

describe('revocations', () => {
  it('are kept across a reopen and listed until their keep-until time', async () => {
    await t.store.revocations.create(revocation(), { limit: 10 })
    await t.reopen()
    const listed = await t.store.revocations.list(TEST_START_MS)
    expect(listed).toEqual([revocation()])
    expect(await t.store.revocations.list(TEST_START_MS + HOUR)).toEqual([])
  })

  it('merge a second revocation of the same credential: the later cutoff and keep-until win', async () => {
    const id = { kind: 'spiffe-id', value: 'spiffe://example.org/w' } as const
    await t.store.revocations.create(
      revocation({ ...id, issuedBeforeMs: 5000, keepUntilMs: TEST_START_MS + 2 * HOUR }),
      {
        limit: 10,
      },
    )
    const merged = await t.store.revocations.create(
      revocation({ ...id, issuedBeforeMs: 9000, reason: 'again' }),
      { limit: 1 },
    )
    expect(merged).toMatchObject({
      issuedBeforeMs: 9000,
      keepUntilMs: TEST_START_MS + 2 * HOUR,
      reason: 'again',
    })
    expect(await t.store.revocations.list(TEST_START_MS)).toHaveLength(1)
  })

  it('are bounded: past the limit of live ones a new one is refused with ERR_REVOCATION_LIMIT', async () => {
    await t.store.revocations.create(revocation({ value: 'a' }), { limit: 2 })
    await t.store.revocations.create(revocation({ value: 'b', keepUntilMs: TEST_START_MS + 1 }), { limit: 2 })
    expect(await codeOf(t.store.revocations.create(revocation({ value: 'c' }), { limit: 2 }))).toBe(
      'ERR_REVOCATION_LIMIT',
    )
    // Once one is past its keep-until time it no longer counts, pruned or not.
    const later = revocation({ value: 'c', revokedAtMs: TEST_START_MS + 1 })
    expect((await t.store.revocations.create(later, { limit: 2 })).value).toBe('c')
  })

  it('are pruned once nothing they revoke can still be valid, and only then', async () => {
    await t.store.revocations.create(revocation({ value: 'short', keepUntilMs: TEST_START_MS + 10 }), {
      limit: 10,
    })
    await t.store.revocations.create(revocation({ value: 'long' }), { limit: 10 })
    expect(await t.store.revocations.prune(TEST_START_MS + 9)).toBe(0)
    expect(await t.store.revocations.prune(TEST_START_MS + 10)).toBe(1)
    expect((await t.store.revocations.list(0)).map((r) => r.value)).toEqual(['long'])
  })

  it('roll back when the commit hook throws (the audit could not be written)', async () => {
    const hooks = {
      beforeCommit: () => {
        throw new Error('audit down')
      },
      commitFailed: () => undefined,
    }
    await expect(t.store.revocations.create(revocation(), { limit: 10, hooks })).rejects.toThrow()
    expect(await t.store.revocations.list(0)).toEqual([])
  })
})
