import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { RegistrationEntry } from '../../lib/core/registration-entry.js'
import {
  openTempDatastore,
  selectors,
  TEST_START_MS,
  type TempDatastore,
  testEntryFields,
  testId,
} from '../../test/helpers/temp-datastore.js'
import { ServerEvents } from '../events.js'
import { AuthorizedEntries, computeAuthorizedSet } from './authorized-entries.js'

const AGENT = testId('/tessera/agent/join_token/a')
const OTHER_AGENT = testId('/tessera/agent/join_token/b')

let temp: TempDatastore
let events: ServerEvents
let authorized: AuthorizedEntries

beforeEach(async () => {
  temp = await openTempDatastore()
  events = new ServerEvents()
  authorized = new AuthorizedEntries({ entries: temp.store.entries, events, clock: temp.clock })
})
afterEach(async () => {
  authorized.close()
  await temp.cleanup()
})

async function entry(
  path: string,
  parent: string,
  extra: { expiresAtMs?: number } = {},
): Promise<RegistrationEntry> {
  return temp.store.entries.create(
    testEntryFields({ spiffeId: testId(path), parentId: testId(parent), ...extra }),
  )
}

function idsOf(list: ReadonlyArray<RegistrationEntry>): string[] {
  return list.map((e) => e.spiffeId.path).sort()
}

describe('computeAuthorizedSet', () => {
  it('returns the direct children of the agent and nothing of another agent', async () => {
    await entry('/web', AGENT.path)
    await entry('/db', AGENT.path)
    await entry('/other', OTHER_AGENT.path)
    const set = await computeAuthorizedSet(temp.store.entries, AGENT, TEST_START_MS)
    expect(idsOf(set.entries)).toEqual(['/db', '/web'])
    expect(set.validUntilMs).toBe(Number.POSITIVE_INFINITY)
  })

  it('follows aliases transitively', async () => {
    const alias = await entry('/tessera/agent/local', AGENT.path)
    await entry('/group', '/tessera/agent/local')
    await entry('/deep', '/group')
    const set = await computeAuthorizedSet(temp.store.entries, AGENT, TEST_START_MS)
    expect(idsOf(set.entries)).toEqual(['/deep', '/group', '/tessera/agent/local'])
    expect(set.byId.get(alias.id)?.spiffeId.equals(alias.spiffeId)).toBe(true)
  })

  it('skips expired entries and what hangs below them only', async () => {
    await entry('/alias', AGENT.path, { expiresAtMs: TEST_START_MS - 1 })
    await entry('/below-expired', '/alias')
    await entry('/soon', AGENT.path, { expiresAtMs: TEST_START_MS + 5000 })
    const set = await computeAuthorizedSet(temp.store.entries, AGENT, TEST_START_MS)
    expect(idsOf(set.entries)).toEqual(['/soon'])
    expect(set.validUntilMs).toBe(TEST_START_MS + 5000)
  })

  it('ends on a cycle of entries and lists each entry once', async () => {
    await entry('/x', AGENT.path)
    await entry('/y', '/x')
    await entry('/x', '/y')
    await entry(AGENT.path, '/y')
    const set = await computeAuthorizedSet(temp.store.entries, AGENT, TEST_START_MS)
    expect(idsOf(set.entries)).toEqual([AGENT.path, '/x', '/x', '/y'])
    expect(new Set(set.entries.map((e) => e.id)).size).toBe(4)
  })

  it('gives the same entry once when two parents of the agent list it', async () => {
    await entry('/alias', AGENT.path)
    await temp.store.entries.create(
      testEntryFields({
        spiffeId: testId('/web'),
        parentId: testId('/alias'),
        selectors: selectors('unix:uid:7'),
      }),
    )
    const set = await computeAuthorizedSet(temp.store.entries, AGENT, TEST_START_MS)
    expect(idsOf(set.entries)).toEqual(['/alias', '/web'])
  })
})

describe('AuthorizedEntries', () => {
  it('serves repeat calls from the cache', async () => {
    await entry('/web', AGENT.path)
    const first = await authorized.forAgent(AGENT)
    expect(await authorized.forAgent(AGENT)).toBe(first)
  })

  it('computes again after entries-changed', async () => {
    await entry('/web', AGENT.path)
    const first = await authorized.forAgent(AGENT)
    await entry('/db', AGENT.path)
    expect(await authorized.forAgent(AGENT)).toBe(first)
    events.emit('entries-changed')
    const second = await authorized.forAgent(AGENT)
    expect(idsOf(second.entries)).toEqual(['/db', '/web'])
  })

  it('computes again once an entry in the set expires', async () => {
    await entry('/web', AGENT.path, { expiresAtMs: TEST_START_MS + 1000 })
    await entry('/db', AGENT.path)
    expect(idsOf((await authorized.forAgent(AGENT)).entries)).toEqual(['/db', '/web'])
    temp.clock.advance(1000)
    expect(idsOf((await authorized.forAgent(AGENT)).entries)).toEqual(['/db'])
  })

  it('keeps agents apart', async () => {
    await entry('/web', AGENT.path)
    await entry('/other', OTHER_AGENT.path)
    expect(idsOf((await authorized.forAgent(AGENT)).entries)).toEqual(['/web'])
    expect(idsOf((await authorized.forAgent(OTHER_AGENT)).entries)).toEqual(['/other'])
  })

  it('stops following changes once closed', async () => {
    authorized.close()
    await entry('/web', AGENT.path)
    const first = await authorized.forAgent(AGENT)
    await entry('/db', AGENT.path)
    events.emit('entries-changed')
    expect(await authorized.forAgent(AGENT)).toBe(first)
  })
})
