import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type AuditCaller, MemoryAuditLog } from '../../common/log/audit-log.js'
import { codeOf } from '../../test/helpers/error-code.js'
import {
  openTempDatastore,
  selectors,
  TEST_START_MS,
  type TempDatastore,
  testId,
} from '../../test/helpers/temp-datastore.js'
import type { AgentFields } from '../datastore/ports.js'
import { ServerEvents } from '../events.js'
import { AgentAdminService } from './agent-admin-service.js'

function agentFields(name: string): AgentFields {
  return {
    spiffeId: testId(`/tessera/agent/join_token/${name}`),
    attestationType: 'join_token',
    serialHex: '0a1b',
    expiresAtMs: TEST_START_MS + 3_600_000,
    banned: false,
    selectors: selectors('join_token:id:1'),
  }
}

const caller: AuditCaller = { kind: 'admin', uid: 0, pid: 9 }
let t: TempDatastore
let audit: MemoryAuditLog
let removed: string[]
let service: AgentAdminService

beforeEach(async () => {
  t = await openTempDatastore()
  audit = new MemoryAuditLog(t.clock)
  const events = new ServerEvents()
  removed = []
  events.on('agent-removed', (id) => removed.push(id))
  service = new AgentAdminService({ agents: t.store.agents, audit, events })
})
afterEach(async () => {
  await t.cleanup()
})

describe('AgentAdminService', () => {
  it('lists and shows agents', async () => {
    expect((await service.list({}, {})).agents).toEqual([])
    await t.store.agents.create(agentFields('a'))
    await t.store.agents.create(agentFields('b'))
    const page = await service.list({}, { pageSize: 1 })
    expect(page.agents.map((a) => a.spiffeId.path)).toEqual(['/tessera/agent/join_token/a'])
    expect(page.nextPageToken).toBeDefined()
    expect((await service.fetch(testId('/tessera/agent/join_token/b'))).serialHex).toBe('0a1b')
    expect(await codeOf(service.fetch(testId('/nobody')))).toBe('ERR_AGENT_NOT_FOUND')
  })

  it('evicts: deletes the record, cuts the agent off and audits it', async () => {
    const agent = await t.store.agents.create(agentFields('a'))
    const evicted = await service.evict(agent.spiffeId, caller)
    expect(evicted.spiffeId.equals(agent.spiffeId)).toBe(true)
    expect(await t.store.agents.fetch(agent.spiffeId)).toBeUndefined()
    expect(removed).toEqual([agent.spiffeId.toString()])
    expect(audit.recordsOf('agent.evicted')).toEqual([
      expect.objectContaining({ resource: agent.spiffeId.toString(), caller, outcome: 'allowed' }),
    ])
  })

  it('bans: keeps the record banned without a serial, cuts the agent off and audits it', async () => {
    const agent = await t.store.agents.create(agentFields('a'))
    const banned = await service.ban(agent.spiffeId, caller)
    expect([banned.banned, banned.serialHex]).toEqual([true, ''])
    expect((await t.store.agents.fetch(agent.spiffeId))?.banned).toBe(true)
    expect(removed).toEqual([agent.spiffeId.toString()])
    expect(audit.recordsOf('agent.banned')).toEqual([
      expect.objectContaining({ resource: agent.spiffeId.toString() }),
    ])
  })

  it('refuses to evict or ban an unknown agent, announcing nothing', async () => {
    expect(await codeOf(service.evict(testId('/tessera/agent/x'), caller))).toBe('ERR_AGENT_NOT_FOUND')
    expect(await codeOf(service.ban(testId('/tessera/agent/x'), caller))).toBe('ERR_AGENT_NOT_FOUND')
    expect(removed).toEqual([])
    expect(audit.records).toEqual([])
  })
})
