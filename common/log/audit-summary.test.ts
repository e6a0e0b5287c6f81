import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ManualClock } from '../../lib/core/clock.js'
import { type CallDenied, MemoryAuditLog } from './audit-log.js'
import { SummarisingAuditLog } from './audit-summary.js'

const WINDOW_MS = 10_000
const caller = (uid: number) => ({ kind: 'workload', pid: 7, uid, gid: uid, exe: '/bin/x' }) as const
const denied = (uid: number, code: CallDenied['code'] = 'ERR_NO_IDENTITY'): CallDenied => ({
  method: 'FetchJWTSVID',
  code,
  reason: 'no identity issued',
  caller: caller(uid),
})

describe('SummarisingAuditLog', () => {
  let clock: ManualClock
  let memory: MemoryAuditLog
  let audit: SummarisingAuditLog

  beforeEach(() => {
    vi.useFakeTimers()
    clock = new ManualClock(1_000_000)
    memory = new MemoryAuditLog(clock)
    audit = new SummarisingAuditLog(memory, { clock, windowMs: WINDOW_MS, maxKinds: 3 })
  })
  afterEach(() => {
    audit.close()
    vi.useRealTimers()
  })

  const tick = (ms: number) => {
    clock.advance(ms)
    vi.advanceTimersByTime(ms)
  }

  it('writes the first refusal whole, then one summary line per window with the count', () => {
    for (let i = 0; i < 500; i++) audit.callDenied(denied(1000))
    expect(memory.records).toHaveLength(1)
    expect(memory.records[0]).not.toHaveProperty('summary')
    tick(WINDOW_MS)
    expect(memory.records).toHaveLength(2)
    expect(memory.records[1]).toMatchObject({
      event: 'call.denied',
      summary: { count: 499, windowMs: WINDOW_MS },
    })
    for (let i = 0; i < 30; i++) audit.callDenied(denied(1000))
    tick(WINDOW_MS)
    expect(memory.records.map((r) => (r['summary'] as { count: number } | undefined)?.count)).toEqual([
      undefined,
      499,
      30,
    ])
  })

  it('forgets a kind after a quiet window: the next refusal is a first line again', () => {
    audit.callDenied(denied(1000))
    tick(WINDOW_MS)
    tick(WINDOW_MS)
    audit.callDenied(denied(1000))
    expect(memory.records).toHaveLength(2)
    expect(memory.records.every((r) => r['summary'] === undefined)).toBe(true)
  })

  it('keeps kinds apart by uid and code, and never summarises grants', () => {
    audit.callDenied(denied(1000))
    audit.callDenied(denied(1001))
    audit.callDenied(denied(1000, 'ERR_THROTTLED'))
    audit.svidIssued({ spiffeId: 'spiffe://td/a', kind: 'jwt', ttlMs: 1, caller: caller(0) })
    audit.svidIssued({ spiffeId: 'spiffe://td/a', kind: 'jwt', ttlMs: 1, caller: caller(0) })
    expect(memory.recordsOf('call.denied')).toHaveLength(3)
    expect(memory.recordsOf('svid.issued')).toHaveLength(2)
  })

  it('bounds memory: past maxKinds, new kinds share one overflow summary', () => {
    for (let uid = 0; uid < 50; uid++) audit.callDenied(denied(uid))
    expect(memory.records).toHaveLength(4)
    tick(WINDOW_MS)
    expect(memory.records.at(-1)).toMatchObject({ summary: { count: 46 } })
  })

  it('summarises failed attestations too, and writes pending counts at close', () => {
    const e = { outcome: 'error', caller: caller(5), matched: [], code: 'ERR_ATTESTATION_FAILED' } as const
    audit.attestationResult(e)
    audit.attestationResult(e)
    audit.close()
    expect(memory.recordsOf('attestation.result').map((r) => r['summary'])).toEqual([
      undefined,
      { count: 1, windowMs: WINDOW_MS },
    ])
  })
})

describe('SummarisingAuditLog kinds', () => {
  it('counts one remote peer as one kind whatever its port', () => {
    const memory = new MemoryAuditLog()
    const audit = new SummarisingAuditLog(memory)
    for (const address of ['10.0.0.1:1000', '10.0.0.1:1001', '[::1]:5', '[::1]:6'])
      audit.callDenied({
        method: 'connect',
        code: 'ERR_CONNECTION_LIMIT',
        reason: 'cap',
        caller: { kind: 'remote', address },
      })
    audit.close()
    expect(
      memory.records.map((r) => (r['summary'] as { count: number } | undefined)?.count ?? 'first'),
    ).toEqual(['first', 'first', 1, 1])
  })
})
