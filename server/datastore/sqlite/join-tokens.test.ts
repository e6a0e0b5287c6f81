import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { codeOf } from '../../../test/helpers/error-code.js'
import {
  openTempDatastore,
  TEST_START_MS,
  type TempDatastore,
  testId,
} from '../../../test/helpers/temp-datastore.js'

const HOUR = 3_600_000
let t: TempDatastore
beforeEach(async () => {
  t = await openTempDatastore()
})
afterEach(async () => {
  await t.cleanup()
})

describe('join tokens', () => {
  it('are consumed once: a second consume gets nothing', async () => {
    await t.store.joinTokens.create({
      token: 'tok-1',
      expiresAtMs: TEST_START_MS + HOUR,
      aliasId: testId('/node/a'),
    })
    const first = await t.store.joinTokens.consume('tok-1', TEST_START_MS)
    expect(first?.token).toBe('tok-1')
    expect(first?.expiresAtMs).toBe(TEST_START_MS + HOUR)
    expect(first?.aliasId?.toString()).toBe('spiffe://example.org/node/a')
    expect(await t.store.joinTokens.consume('tok-1', TEST_START_MS)).toBeUndefined()
  })

  it('survive a reopen, and only their digest is stored', async () => {
    await t.store.joinTokens.create({ token: 'secret-token-value', expiresAtMs: TEST_START_MS + HOUR })
    await t.reopen()
    const { readFileSync } = await import('node:fs')
    const bytes = Buffer.concat([readFileSync(t.path), readFileSync(`${t.path}-wal`)])
    expect(bytes.includes('secret-token-value')).toBe(false)
    const token = await t.store.joinTokens.consume('secret-token-value', TEST_START_MS)
    expect(token?.aliasId).toBeUndefined()
  })

  it.each<[string, number, boolean]>([
    ['before expiry', TEST_START_MS + HOUR - 1, true],
    ['at expiry', TEST_START_MS + HOUR, false],
    ['after expiry', TEST_START_MS + 2 * HOUR, false],
  ])('consume %s', async (_name, nowMs, accepted) => {
    await t.store.joinTokens.create({ token: 'tok', expiresAtMs: TEST_START_MS + HOUR })
    expect((await t.store.joinTokens.consume('tok', nowMs)) !== undefined).toBe(accepted)
    expect(await t.store.joinTokens.consume('tok', TEST_START_MS)).toBeUndefined()
  })

  it('returns nothing for an unknown or empty token', async () => {
    expect(await t.store.joinTokens.consume('never-made', TEST_START_MS)).toBeUndefined()
    expect(await t.store.joinTokens.consume('', TEST_START_MS)).toBeUndefined()
  })

  it('only one of many concurrent consumers wins', async () => {
    await t.store.joinTokens.create({ token: 'race', expiresAtMs: TEST_START_MS + HOUR })
    const results = await Promise.all(
      Array.from({ length: 10 }, () => t.store.joinTokens.consume('race', TEST_START_MS)),
    )
    expect(results.filter((r) => r !== undefined)).toHaveLength(1)
  })

  it.each<[string, { token: string; expiresAtMs: number }]>([
    ['an empty token', { token: '', expiresAtMs: TEST_START_MS }],
    ['a huge token', { token: 'x'.repeat(2000), expiresAtMs: TEST_START_MS }],
    ['no expiry', { token: 'x', expiresAtMs: Number.NaN }],
  ])('refuses %s', async (_name, token) => {
    expect(await codeOf(t.store.joinTokens.create(token))).toBe('ERR_JOIN_TOKEN_INVALID')
  })

  it('refuses a token that is already stored', async () => {
    await t.store.joinTokens.create({ token: 'dup', expiresAtMs: TEST_START_MS + HOUR })
    const again = t.store.joinTokens.create({ token: 'dup', expiresAtMs: TEST_START_MS + 2 * HOUR })
    expect(await codeOf(again)).toBe('ERR_JOIN_TOKEN_INVALID')
  })

  it('prunes the expired tokens only', async () => {
    await t.store.joinTokens.create({ token: 'old', expiresAtMs: TEST_START_MS + 10 })
    await t.store.joinTokens.create({ token: 'new', expiresAtMs: TEST_START_MS + HOUR })
    expect(await t.store.joinTokens.prune(TEST_START_MS + 10)).toBe(1)
    expect(await t.store.joinTokens.consume('new', TEST_START_MS + 20)).toBeDefined()
  })
})
