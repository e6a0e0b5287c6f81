import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../lib/core/clock.js'
import { type AuditCaller, type AuditLog, fingerprintToken, MemoryAuditLog } from './audit-log.js'

const ADMIN: AuditCaller = { kind: 'admin', uid: 0, pid: 10 }
const AGENT: AuditCaller = { kind: 'agent', spiffeId: 'spiffe://td/tessera/agent/join_token/sha256:ab' }
const WORKLOAD = { kind: 'workload', pid: 4242, uid: 1000, gid: 1000, exe: '/usr/bin/tool' } as const
const REMOTE: AuditCaller = { kind: 'remote', address: '10.0.0.2:5000' }
const SYSTEM: AuditCaller = { kind: 'system', component: 'ca.rotator' }
const SVID = { kind: 'svid', spiffeId: 'spiffe://td/client', address: '127.0.0.1:5000' } as const
const ID = 'spiffe://td/app'
const TOKEN = 'c0ffee-join-token-secret'

type Call = (log: AuditLog) => void

/** [method, call, expected record]: every method of the port. */
const EVENTS: ReadonlyArray<readonly [string, Call, Record<string, unknown>]> = [
  [
    'entryChanged',
    (l) => l.entryChanged({ action: 'created', entryId: 'e1', spiffeId: ID, caller: ADMIN }),
    {
      event: 'entry.changed',
      outcome: 'allowed',
      actor: 'admin:uid:0',
      resource: ID,
      code: 'OK',
      action: 'created',
      entryId: 'e1',
      caller: ADMIN,
    },
  ],
  [
    'entryChanged, failed',
    (l) => l.entryChanged({ action: 'deleted', spiffeId: ID, caller: ADMIN, code: 'ERR_ENTRY_NOT_FOUND' }),
    { event: 'entry.changed', outcome: 'error', code: 'ERR_ENTRY_NOT_FOUND', action: 'deleted' },
  ],
  [
    'tokenCreated',
    (l) =>
      l.tokenCreated({
        tokenId: fingerprintToken(TOKEN),
        ttlMs: 600_000,
        aliasId: 'spiffe://td/node',
        caller: ADMIN,
      }),
    {
      event: 'token.created',
      outcome: 'allowed',
      resource: fingerprintToken(TOKEN),
      ttlMs: 600_000,
      aliasId: 'spiffe://td/node',
    },
  ],
  [
    'tokenUsed',
    (l) => l.tokenUsed({ tokenId: fingerprintToken(TOKEN), agentId: AGENT.spiffeId, caller: REMOTE }),
    {
      event: 'token.used',
      outcome: 'allowed',
      code: 'OK',
      agentId: AGENT.spiffeId,
      caller: REMOTE,
      actor: 'remote:10.0.0.2:5000',
    },
  ],
  [
    'tokenUsed, replayed',
    (l) => l.tokenUsed({ tokenId: fingerprintToken(TOKEN), caller: REMOTE, code: 'ERR_JOIN_TOKEN_INVALID' }),
    { event: 'token.used', outcome: 'denied', code: 'ERR_JOIN_TOKEN_INVALID' },
  ],
  [
    'agentAttested',
    (l) => l.agentAttested({ agentId: AGENT.spiffeId, attestor: 'join_token', serial: '01', caller: REMOTE }),
    {
      event: 'agent.attested',
      outcome: 'allowed',
      resource: AGENT.spiffeId,
      attestor: 'join_token',
      serial: '01',
    },
  ],
  [
    'agentEvicted',
    (l) => l.agentEvicted({ agentId: AGENT.spiffeId, caller: ADMIN }),
    { event: 'agent.evicted', outcome: 'allowed', resource: AGENT.spiffeId },
  ],
  [
    'agentBanned',
    (l) => l.agentBanned({ agentId: AGENT.spiffeId, caller: ADMIN }),
    { event: 'agent.banned', outcome: 'allowed', resource: AGENT.spiffeId },
  ],
  [
    'svidIssued',
    (l) =>
      l.svidIssued({ spiffeId: ID, kind: 'jwt', ttlMs: 300_000, audience: ['a', 'b'], caller: WORKLOAD }),
    {
      event: 'svid.issued',
      outcome: 'allowed',
      actor: 'unix:uid:1000:pid:4242',
      resource: ID,
      action: 'issue',
      kind: 'jwt',
      ttlMs: 300_000,
      audience: ['a', 'b'],
      caller: WORKLOAD,
    },
  ],
  [
    'issuanceDenied',
    (l) =>
      l.issuanceDenied({
        spiffeId: ID,
        kind: 'x509',
        code: 'ERR_AGENT_UNAUTHORIZED',
        reason: 'not authorized',
        caller: AGENT,
      }),
    {
      event: 'svid.denied',
      outcome: 'denied',
      actor: AGENT.spiffeId,
      resource: ID,
      code: 'ERR_AGENT_UNAUTHORIZED',
      reason: 'not authorized',
    },
  ],
  [
    'attestationResult',
    (l) =>
      l.attestationResult({
        outcome: 'denied',
        caller: WORKLOAD,
        matched: [],
        selectorCount: 6,
        code: 'ERR_PEER_UNAUTHORIZED',
      }),
    { event: 'attestation.result', outcome: 'denied', resource: 'pid:4242', matched: [], selectorCount: 6 },
  ],
  [
    'callDenied',
    (l) =>
      l.callDenied({
        method: '/tessera.admin.v1.Entries/Create',
        code: 'ERR_PEER_UNAUTHORIZED',
        reason: 'uid not allowed',
        caller: ADMIN,
      }),
    {
      event: 'call.denied',
      outcome: 'denied',
      action: '/tessera.admin.v1.Entries/Create',
      resource: '/tessera.admin.v1.Entries/Create',
      code: 'ERR_PEER_UNAUTHORIZED',
    },
  ],
  [
    'callAllowed, with a resource and a correlation id',
    (l) =>
      l.callAllowed({ method: 'POST', resource: 'search', via: 'jwt', correlationId: 'c1', caller: SVID }),
    {
      event: 'call.allowed',
      actor: SVID.spiffeId,
      action: 'POST',
      resource: 'search',
      via: 'jwt',
      correlationId: 'c1',
    },
  ],
  [
    'approvalRequested',
    (l) =>
      l.approvalRequested({
        requestId: 'r1',
        uid: 1000,
        sha256: 'ab',
        exePath: '/usr/bin/tool',
        agentId: AGENT.spiffeId,
        caller: AGENT,
      }),
    {
      event: 'approval.requested',
      outcome: 'allowed',
      actor: AGENT.spiffeId,
      action: 'request',
      resource: '/usr/bin/tool',
      correlationId: 'r1',
      uid: 1000,
      sha256: 'ab',
    },
  ],
  [
    'approvalApproved',
    (l) =>
      l.approvalApproved({
        requestId: 'r1',
        entryId: 'e1',
        spiffeId: ID,
        exePath: '/usr/bin/tool',
        expiresAt: 1_735_779_600,
        caller: ADMIN,
      }),
    {
      event: 'approval.approved',
      actor: 'admin:uid:0',
      action: 'approve',
      resource: ID,
      correlationId: 'r1',
      entryId: 'e1',
      expiresAt: 1_735_779_600,
    },
  ],
  [
    'approvalDenied',
    (l) =>
      l.approvalDenied({
        requestId: 'r1',
        exePath: '/usr/bin/tool',
        deniedUntil: 1_735_862_400,
        caller: ADMIN,
      }),
    {
      event: 'approval.denied',
      outcome: 'allowed',
      action: 'deny',
      resource: '/usr/bin/tool',
      correlationId: 'r1',
      deniedUntil: 1_735_862_400,
    },
  ],
  [
    'approvalDropped',
    (l) => l.approvalDropped({ store: 'server', limit: 10, count: 1, caller: AGENT }),
    {
      event: 'approval.dropped',
      outcome: 'denied',
      code: 'ERR_PENDING_LIMIT',
      action: 'drop',
      resource: 'pending-requests:server',
      limit: 10,
      count: 1,
    },
  ],
  [
    'gatewayStreamCut',
    (l) =>
      l.gatewayStreamCut({
        method: 'GET',
        path: '/mcp',
        cause: 'revoked',
        code: 'ERR_CREDENTIAL_REVOKED',
        reason: 'the credential was revoked (task): response cut',
        via: 'jwt',
        correlationId: 't1',
        caller: SVID,
      }),
    {
      event: 'gateway.stream.cut',
      outcome: 'denied',
      actor: SVID.spiffeId,
      action: 'GET',
      resource: '/mcp',
      path: '/mcp',
      cause: 'revoked',
      code: 'ERR_CREDENTIAL_REVOKED',
      correlationId: 't1',
    },
  ],
  [
    'bundleChanged',
    (l) => l.bundleChanged({ trustDomain: 'td', action: 'rotated', caller: SYSTEM }),
    { event: 'bundle.changed', outcome: 'allowed', resource: 'td', action: 'rotated', caller: SYSTEM },
  ],
]

describe('MemoryAuditLog', () => {
  it.each(EVENTS)('%s makes one record of the common shape', (_, call, expected) => {
    const audit = new MemoryAuditLog(new ManualClock(Date.UTC(2025, 0, 2)))
    call(audit)
    expect(audit.records).toHaveLength(1)
    const [record] = audit.records
    expect(record).toMatchObject({ time: '2025-01-02T00:00:00.000Z', ...expected })
    for (const field of ['time', 'event', 'outcome', 'actor', 'caller', 'resource', 'action', 'code'])
      expect(record).toHaveProperty(field)
    expect(Object.values(record ?? {})).not.toContain(undefined)
  })

  it('keeps records in order, frozen, and filters them by event', () => {
    const audit = new MemoryAuditLog()
    audit.agentEvicted({ agentId: 'a', caller: ADMIN })
    audit.agentBanned({ agentId: 'a', caller: ADMIN })
    expect(audit.records.map((r) => r.event)).toEqual(['agent.evicted', 'agent.banned'])
    expect(audit.recordsOf('agent.banned')).toHaveLength(1)
    expect(Object.isFrozen(audit.records[0])).toBe(true)
    audit.clear()
    expect(audit.records).toHaveLength(0)
  })

  it('copies what it is given, leaving the caller’s objects alone', () => {
    const audit = new MemoryAuditLog()
    const caller = { kind: 'workload', pid: 1, uid: 2, gid: 3 } as const
    const audience = ['a']
    audit.svidIssued({ spiffeId: ID, kind: 'jwt', ttlMs: 1, audience, caller })
    audience.push('b')
    expect(audit.records[0]?.['audience']).toEqual(['a'])
    expect(Object.isFrozen(caller)).toBe(false)
  })

  it('never keeps a raw join token, even one passed as the id by mistake', () => {
    const audit = new MemoryAuditLog()
    audit.tokenCreated({ tokenId: TOKEN, ttlMs: 1, caller: ADMIN })
    audit.tokenUsed({ tokenId: TOKEN, caller: REMOTE, code: 'ERR_JOIN_TOKEN_INVALID' })
    expect(JSON.stringify(audit.records)).not.toContain(TOKEN)
    expect(audit.records.map((r) => r.resource)).toEqual([fingerprintToken(TOKEN), fingerprintToken(TOKEN)])
  })

  it('does not let details hide the common fields', () => {
    const audit = new MemoryAuditLog()
    const sneaky = {
      agentId: 'a',
      attestor: 'x',
      caller: ADMIN,
      event: 'call.denied',
      outcome: 'denied',
      actor: 'spiffe://td/someone-else',
      resource: 'elsewhere',
      action: 'forge',
    }
    audit.agentAttested(sneaky)
    expect(audit.records[0]).toMatchObject({
      event: 'agent.attested',
      outcome: 'allowed',
      actor: 'admin:uid:0',
      resource: 'a',
      action: 'attest',
    })
  })

  it('names the actor by SPIFFE ID when the caller has one, else by how it was identified', () => {
    const audit = new MemoryAuditLog()
    for (const caller of [ADMIN, AGENT, WORKLOAD, REMOTE, SYSTEM, SVID])
      audit.callAllowed({ method: 'm', caller })
    expect(audit.records.map((r) => r.actor)).toEqual([
      'admin:uid:0',
      AGENT.spiffeId,
      'unix:uid:1000:pid:4242',
      'remote:10.0.0.2:5000',
      'system:ca.rotator',
      SVID.spiffeId,
    ])
  })

  it('writes the correlation after the common fields, and no correlation field when there is none', () => {
    const audit = new MemoryAuditLog()
    audit.svidIssued({ spiffeId: ID, kind: 'x509', ttlMs: 1, caller: WORKLOAD, correlationId: 'call-1' })
    audit.svidIssued({ spiffeId: ID, kind: 'x509', ttlMs: 1, caller: WORKLOAD })
    const [first, second] = audit.records
    expect(Object.keys(first ?? {}).slice(-2)).toEqual(['correlationId', 'time'])
    expect(first?.['correlationId']).toBe('call-1')
    expect(second).not.toHaveProperty('correlationId')
    expect(second).not.toHaveProperty('delegatedSubject')
  })
})

describe('fingerprintToken', () => {
  it('is sha256: and 16 hex digits, stable, and differs between tokens', () => {
    expect(fingerprintToken(TOKEN)).toMatch(/^sha256:[0-9a-f]{16}$/)
    expect(fingerprintToken(TOKEN)).toBe(fingerprintToken(TOKEN))
    expect(fingerprintToken(TOKEN)).not.toBe(fingerprintToken(`${TOKEN}x`))
  })
})
