import { describe, expect, it } from 'vitest'
import { type AuditLine, formatAuditLine, jsonViewOf, matches } from './audit-lines.js'

const GATEWAY_LINE: AuditLine = {
  seq: 4,
  prev: '0'.repeat(64),
  time: '2026-12-03T08:20:00.000Z',
  path: '/mcp',
  via: 'jwt',
  event: 'call.allowed',
  outcome: 'allowed',
  actor: 'spiffe://td/agents/claude',
  caller: { kind: 'svid', spiffeId: 'spiffe://td/agents/claude', address: '127.0.0.1' },
  resource: 'search',
  action: 'POST',
  code: 'OK',
  correlationId: '4bf92f3577b34da6a3ce929d0e0e4736',
}
const WORKLOAD_LINE: AuditLine = {
  seq: 5,
  time: '2026-12-03T08:21:00.000Z',
  reason: 'no identity issued',
  event: 'call.denied',
  outcome: 'denied',
  actor: 'unix:uid:1000:pid:42',
  caller: { kind: 'workload', pid: 42, uid: 1000, gid: 1000, exe: '/usr/bin/tool' },
  resource: 'FetchX509SVID',
  action: 'FetchX509SVID',
  code: 'ERR_NO_IDENTITY',
  correlationId: 'call-1',
}
/** A line written before the fields took the agent-auth names. */
const OLD_LINE: AuditLine = {
  time: '2026-12-01T00:00:00.000Z',
  event: 'svid.issued',
  outcome: 'allowed',
  caller: { kind: 'agent', spiffeId: 'spiffe://td/tessera/agent/x' },
  subject: 'spiffe://td/web',
  code: 'OK',
}

describe('matches', () => {
  it.each<[string, Parameters<typeof matches>[1], ReadonlyArray<AuditLine>]>([
    ['actor', { actor: 'unix:uid:1000:pid:42' }, [WORKLOAD_LINE]],
    ['actor of an old line (its caller)', { actor: 'spiffe://td/tessera/agent/x' }, [OLD_LINE]],
    ['resource', { resource: 'search' }, [GATEWAY_LINE]],
    ['resource of an old line (its subject)', { resource: 'spiffe://td/web' }, [OLD_LINE]],
    ['correlation id', { correlationId: 'call-1' }, [WORKLOAD_LINE]],
    ['id as actor', { id: 'spiffe://td/agents/claude' }, [GATEWAY_LINE]],
    ['id as resource', { id: 'spiffe://td/web' }, [OLD_LINE]],
    ['correlation id and outcome', { correlationId: 'call-1', outcome: 'allowed' }, []],
    ['time', { sinceMs: Date.parse('2026-12-03T08:20:30.000Z') }, [WORKLOAD_LINE]],
  ])('filters by %s', (_name, filter, expected) => {
    expect([GATEWAY_LINE, WORKLOAD_LINE, OLD_LINE].filter((l) => matches(l, filter))).toEqual(expected)
  })
})

describe('formatAuditLine', () => {
  it('shows the action and resource, the actor (with a workload’s executable) and the correlation id', () => {
    expect(formatAuditLine(GATEWAY_LINE)).toBe(
      '2026-12-03T08:20:00.000Z  #4  call.allowed  allowed  POST search  OK  by spiffe://td/agents/claude  corr=4bf92f3577b34da6a3ce929d0e0e4736',
    )
    expect(formatAuditLine(WORKLOAD_LINE)).toContain(
      'by unix:uid:1000:pid:42 (/usr/bin/tool)  corr=call-1  reason: no identity issued',
    )
  })

  it('shows an old line by its subject and caller', () => {
    expect(formatAuditLine(OLD_LINE)).toContain(
      'svid.issued  allowed  spiffe://td/web  OK  by agent spiffeId=spiffe://td/tessera/agent/x',
    )
  })
})

describe('jsonViewOf', () => {
  it('gives the agent-auth fields their snake_case names', () => {
    const view = jsonViewOf({ ...GATEWAY_LINE, delegatedSubject: 'spiffe://td/user/alice' })
    expect(view).toMatchObject({
      actor: 'spiffe://td/agents/claude',
      resource: 'search',
      action: 'POST',
      outcome: 'allowed',
      correlation_id: '4bf92f3577b34da6a3ce929d0e0e4736',
      delegated_subject: 'spiffe://td/user/alice',
      logged_at: Date.parse('2026-12-03T08:20:00.000Z') / 1000,
    })
  })
})
