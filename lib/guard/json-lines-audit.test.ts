import { describe, expect, it } from 'vitest'
import { ManualClock } from '../core/clock.js'
import type { RequestDecided } from './decision.js'
import { JsonLinesAudit } from './json-lines-audit.js'

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5)
const denied: RequestDecided = {
  outcome: 'denied',
  method: 'GET',
  path: '/tools/search',
  address: '127.0.0.1',
  claimedSpiffeId: 'spiffe://example.org/someone',
  code: 'ERR_JWT_EXPIRED',
  reason: 'the token expired',
  correlationId: '4bf92f3577b34da6a3ce929d0e0e4736',
}
const allowed: RequestDecided = {
  outcome: 'allowed',
  method: 'POST',
  path: '/tools/run',
  address: '127.0.0.1',
  spiffeId: 'spiffe://example.org/agent',
  via: 'jwt',
  code: 'OK',
  tools: ['search'],
  correlationId: 'req-1',
}

describe('JsonLinesAudit', () => {
  it('writes one JSON object per line per decision, with its time and event', () => {
    const lines: string[] = []
    const audit = new JsonLinesAudit({ write: (line) => lines.push(line) }, { clock: new ManualClock(T0) })
    audit.requestDecided(denied)
    audit.requestDecided(allowed)
    expect(lines.every((l) => l.endsWith('\n') && l.indexOf('\n') === l.length - 1)).toBe(true)
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      {
        time: '2026-01-02T03:04:05.000Z',
        event: 'call.denied',
        outcome: 'denied',
        actor: 'remote:127.0.0.1',
        resource: '/tools/search',
        action: 'GET',
        code: 'ERR_JWT_EXPIRED',
        correlationId: '4bf92f3577b34da6a3ce929d0e0e4736',
        path: '/tools/search',
        address: '127.0.0.1',
        claimedSpiffeId: 'spiffe://example.org/someone',
        reason: 'the token expired',
      },
      {
        time: '2026-01-02T03:04:05.000Z',
        event: 'call.allowed',
        outcome: 'allowed',
        actor: 'spiffe://example.org/agent',
        resource: 'search',
        action: 'POST',
        code: 'OK',
        correlationId: 'req-1',
        path: '/tools/run',
        address: '127.0.0.1',
        via: 'jwt',
        tools: ['search'],
      },
    ])
  })

  it('fails closed once a write failed: later decisions throw ERR_AUDIT_UNAVAILABLE', () => {
    let isBroken = false
    const audit = new JsonLinesAudit({
      write: () => {
        if (isBroken) throw new Error('ENOSPC')
      },
    })
    audit.requestDecided(allowed)
    isBroken = true
    expect(() => audit.requestDecided(allowed)).toThrow(
      expect.objectContaining({ code: 'ERR_AUDIT_UNAVAILABLE' }),
    )
    isBroken = false
    expect(() => audit.requestDecided(allowed)).toThrow(
      expect.objectContaining({ code: 'ERR_AUDIT_UNAVAILABLE' }),
    )
  })

  it('tells onError instead, when given one, and goes on', () => {
    const codes: string[] = []
    const audit = new JsonLinesAudit(
      {
        write: () => {
          throw new Error('EIO')
        },
      },
      { onError: (err) => codes.push(err.code) },
    )
    audit.requestDecided(allowed)
    audit.requestDecided(denied)
    expect(codes).toEqual(['ERR_AUDIT_UNAVAILABLE', 'ERR_AUDIT_UNAVAILABLE'])
  })
})
