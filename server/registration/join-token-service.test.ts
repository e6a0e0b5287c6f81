import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type AuditCaller, fingerprintToken, MemoryAuditLog } from '../../common/log/audit-log.js'
import { IdentityError } from '../../lib/core/errors.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import { codeOf } from '../../test/helpers/error-code.js'
import {
  openTempDatastore,
  TEST_START_MS,
  TEST_TRUST_DOMAIN,
  type TempDatastore,
  testId,
} from '../../test/helpers/temp-datastore.js'
import { agentIdForJoinToken } from '../agents/agent-id.js'
import type { JoinTokenStore } from '../datastore/ports.js'
import { ServerEvents } from '../events.js'
import { EntryService } from './entry-service.js'
import { JoinTokenService, type JoinTokenServiceDeps } from './join-token-service.js'

const caller: AuditCaller = { kind: 'admin', uid: 0, pid: 7 }
const DEFAULT_TTL_MS = 600_000
let t: TempDatastore
let audit: MemoryAuditLog
let entries: EntryService

function makeService(overrides: Partial<JoinTokenServiceDeps> = {}): JoinTokenService {
  return new JoinTokenService({
    trustDomain: TEST_TRUST_DOMAIN,
    tokens: t.store.joinTokens,
    entries,
    audit,
    clock: t.clock,
    defaultTtlMs: DEFAULT_TTL_MS,
    ...overrides,
  })
}

/** The real token store, recording every token created through it. */
function recordingTokens(): { tokens: JoinTokenStore; stored: string[] } {
  const stored: string[] = []
  const tokens: JoinTokenStore = {
    create: async (tok) => {
      stored.push(tok.token)
      await t.store.joinTokens.create(tok)
    },
    consume: (token, nowMs) => t.store.joinTokens.consume(token, nowMs),
    prune: (nowMs) => t.store.joinTokens.prune(nowMs),
  }
  return { tokens, stored }
}

beforeEach(async () => {
  t = await openTempDatastore()
  audit = new MemoryAuditLog(t.clock)
  entries = new EntryService({
    trustDomain: TEST_TRUST_DOMAIN,
    store: t.store.entries,
    audit,
    events: new ServerEvents(),
  })
})
afterEach(async () => {
  await t.cleanup()
})

describe('JoinTokenService', () => {
  it('stores a random token with the default TTL and audits only its fingerprint', async () => {
    const created = await makeService().create({}, caller)
    expect(created.token).toMatch(/^[0-9a-f-]{36}$/)
    expect(created.expiresAtMs).toBe(TEST_START_MS + DEFAULT_TTL_MS)
    expect(created.agentId.equals(agentIdForJoinToken(TEST_TRUST_DOMAIN, created.token))).toBe(true)
    expect(audit.recordsOf('token.created')).toEqual([
      expect.objectContaining({ resource: fingerprintToken(created.token), ttlMs: DEFAULT_TTL_MS, caller }),
    ])
    expect(JSON.stringify(audit.records)).not.toContain(created.token)
    expect((await t.store.joinTokens.consume(created.token, TEST_START_MS))?.token).toBe(created.token)
    expect(await t.store.entries.count()).toBe(0)
  })

  it('creates the alias entry as SPIRE does', async () => {
    const aliasId = testId('/node/a')
    const created = await makeService().create({ ttlMs: 60_000, aliasId }, caller)
    const { entries: list } = await t.store.entries.list()
    expect(list).toHaveLength(1)
    expect(list[0]?.spiffeId.equals(aliasId)).toBe(true)
    expect(list[0]?.parentId.equals(created.agentId)).toBe(true)
    expect(list[0]?.selectors.map(String)).toEqual([`spiffe_id:${created.agentId}`])
    expect(audit.recordsOf('token.created')[0]).toMatchObject({ aliasId: aliasId.toString(), ttlMs: 60_000 })
    expect((await t.store.joinTokens.consume(created.token, TEST_START_MS))?.aliasId?.equals(aliasId)).toBe(
      true,
    )
  })

  it.each<[string, number]>([
    ['zero', 0],
    ['negative', -1000],
    ['fractional', 1.5],
  ])('refuses a %s TTL', async (_name, ttlMs) => {
    expect(await codeOf(makeService().create({ ttlMs }, caller))).toBe('ERR_TTL_INVALID')
    expect(audit.records).toEqual([])
  })

  it('refuses an alias outside the trust domain before storing anything', async () => {
    const { tokens, stored } = recordingTokens()
    const aliasId = SpiffeId.parse('spiffe://other.org/node')
    expect(await codeOf(makeService({ tokens }).create({ aliasId }, caller))).toBe('ERR_ENTRY_INVALID')
    expect(stored).toEqual([])
    expect(audit.recordsOf('token.created')).toEqual([])
  })

  it('removes the token again when the alias entry cannot be stored', async () => {
    const { tokens, stored } = recordingTokens()
    const failing = {
      create: async () => {
        throw new IdentityError('ERR_DATASTORE_IO', 'disk full')
      },
    }
    const service = makeService({ tokens, entries: failing })
    expect(await codeOf(service.create({ aliasId: testId('/node/b') }, caller))).toBe('ERR_DATASTORE_IO')
    expect(stored).toHaveLength(1)
    expect(await t.store.joinTokens.consume(stored[0] ?? '', TEST_START_MS)).toBeUndefined()
    expect(audit.recordsOf('token.created')).toEqual([])
  })
})
