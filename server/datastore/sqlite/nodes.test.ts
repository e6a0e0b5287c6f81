import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { codeOf } from '../../../test/helpers/error-code.js'
import {
  openTempDatastore,
  selectors,
  TEST_START_MS,
  type TempDatastore,
  testId,
} from '../../../test/helpers/temp-datastore.js'
import type { AgentFields, AttestedAgent } from '../ports.js'

function plain(agent: AttestedAgent | undefined): unknown {
  return agent === undefined ? undefined : JSON.parse(JSON.stringify(agent))
}

function agentFields(name: string, overrides: Partial<AgentFields> = {}): AgentFields {
  return {
    spiffeId: testId(`/tessera/agent/join_token/${name}`),
    attestationType: 'join_token',
    serialHex: '0a1b',
    expiresAtMs: TEST_START_MS + 3_600_000,
    banned: false,
    selectors: selectors('join_token:id:1'),
    ...overrides,
  }
}

let t: TempDatastore
beforeEach(async () => {
  t = await openTempDatastore()
})
afterEach(async () => {
  await t.cleanup()
})

describe('attested agents', () => {
  it('creates and fetches an agent, stamping its times', async () => {
    const created = await t.store.agents.create(agentFields('a'))
    expect(created.createdAtMs).toBe(TEST_START_MS)
    expect(created.updatedAtMs).toBe(TEST_START_MS)
    expect(plain(created)).toMatchObject({
      spiffeId: 'spiffe://example.org/tessera/agent/join_token/a',
      serialHex: '0a1b',
      banned: false,
      selectors: [{ type: 'join_token', value: 'id:1' }],
    })
    expect(plain(await t.store.agents.fetch(created.spiffeId))).toEqual(plain(created))
    expect(await t.store.agents.fetch(testId('/nobody'))).toBeUndefined()
  })

  it('refuses a second agent with the same ID', async () => {
    await t.store.agents.create(agentFields('a'))
    expect(await codeOf(t.store.agents.create(agentFields('a')))).toBe('ERR_AGENT_EXISTS')
  })

  it.each<[string, Partial<AgentFields>]>([
    ['an uppercase serial', { serialHex: 'ABC' }],
    ['no attestation type', { attestationType: '' }],
    ['no expiry', { expiresAtMs: Number.NaN }],
  ])('refuses %s', async (_name, overrides) => {
    expect(await codeOf(t.store.agents.create(agentFields('a', overrides)))).toBe('ERR_REQUEST_INVALID')
  })

  it('updates the given fields, keeps the others and stamps updatedAtMs', async () => {
    const a = await t.store.agents.create(agentFields('a'))
    t.clock.advance(1000)
    const renewed = await t.store.agents.update(a.spiffeId, {
      serialHex: 'ff',
      expiresAtMs: TEST_START_MS + 7_200_000,
    })
    expect(renewed).toMatchObject({ serialHex: 'ff', expiresAtMs: TEST_START_MS + 7_200_000, banned: false })
    expect(renewed.updatedAtMs).toBe(TEST_START_MS + 1000)
    expect(renewed.createdAtMs).toBe(TEST_START_MS)
    const banned = await t.store.agents.update(a.spiffeId, { banned: true, serialHex: '' })
    expect(plain(await t.store.agents.fetch(a.spiffeId))).toEqual(plain(banned))
    expect(banned.banned).toBe(true)
    expect(await codeOf(t.store.agents.update(testId('/nobody'), { banned: true }))).toBe(
      'ERR_AGENT_NOT_FOUND',
    )
  })

  it('evicts an agent and returns it', async () => {
    const a = await t.store.agents.create(agentFields('a'))
    expect(plain(await t.store.agents.delete(a.spiffeId))).toEqual(plain(a))
    expect(await t.store.agents.fetch(a.spiffeId)).toBeUndefined()
    expect(await codeOf(t.store.agents.delete(a.spiffeId))).toBe('ERR_AGENT_NOT_FOUND')
  })

  it.each<[string, boolean | undefined, number]>([
    ['all', undefined, 25],
    ['banned', true, 10],
    ['not banned', false, 15],
  ])('lists %s agents through pages', async (_name, banned, expected) => {
    for (let i = 0; i < 25; i++) await t.store.agents.create(agentFields(`n${i}`, { banned: i % 5 < 2 }))
    const filter = banned === undefined ? {} : { banned }
    const seen: string[] = []
    let pageToken: string | undefined
    do {
      const page = await t.store.agents.list(filter, { pageSize: 4, ...(pageToken ? { pageToken } : {}) })
      seen.push(...page.agents.map((a) => a.spiffeId.toString()))
      if (banned !== undefined) expect(page.agents.every((a) => a.banned === banned)).toBe(true)
      pageToken = page.nextPageToken
    } while (pageToken)
    expect(new Set(seen).size).toBe(expected)
    expect(seen).toHaveLength(expected)
    expect(await t.store.agents.count(filter)).toBe(expected)
  })

  it('refuses a malformed agents page token', async () => {
    const entriesToken = Buffer.from('e1:00000000-0000-4000-8000-000000000000').toString('base64url')
    expect(await codeOf(t.store.agents.list({}, { pageToken: entriesToken }))).toBe('ERR_PAGE_TOKEN_INVALID')
    const notAnId = Buffer.from('a1:not a spiffe id').toString('base64url')
    expect(await codeOf(t.store.agents.list({}, { pageToken: notAnId }))).toBe('ERR_PAGE_TOKEN_INVALID')
  })
})
