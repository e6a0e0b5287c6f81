import type { DestinationStream } from 'pino'
import { describe, expect, it } from 'vitest'
import { fingerprintToken } from './audit-log.js'
import { PinoAuditLog } from './pino-audit-log.js'

function memoryAudit() {
  const lines: string[] = []
  const destination: DestinationStream = { write: (line: string) => void lines.push(line) }
  const audit = new PinoAuditLog(destination)
  return { audit, lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) }
}

const WORKLOAD = { kind: 'workload', pid: 7, uid: 1000, gid: 1000, exe: '/bin/tool' } as const

describe('PinoAuditLog', () => {
  it('writes one JSON line a record, with an ISO time and no level or message', () => {
    const { audit, records } = memoryAudit()
    audit.svidIssued({
      spiffeId: 'spiffe://td/a',
      kind: 'x509',
      serial: '0a',
      ttlMs: 3_600_000,
      caller: WORKLOAD,
    })
    const [record] = records()
    expect(record).toEqual({
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      event: 'svid.issued',
      outcome: 'allowed',
      caller: WORKLOAD,
      subject: 'spiffe://td/a',
      code: 'OK',
      kind: 'x509',
      serial: '0a',
      ttlMs: 3_600_000,
    })
  })

  it('writes every event whatever the process log level (it has none)', () => {
    const { audit, lines } = memoryAudit()
    audit.callDenied({ method: '/m', code: 'ERR_PEER_UNAUTHORIZED', reason: 'no', caller: WORKLOAD })
    audit.attestationResult({
      outcome: 'error',
      caller: WORKLOAD,
      matched: [],
      code: 'ERR_PEER_UNAUTHORIZED',
    })
    expect(lines).toHaveLength(2)
  })

  it('never writes a join token', () => {
    const { audit, lines } = memoryAudit()
    const token = 'very-secret-join-token'
    audit.tokenUsed({ tokenId: token, caller: { kind: 'remote', address: '1.2.3.4:5' } })
    expect(lines.join('')).not.toContain(token)
    expect(lines.join('')).toContain(fingerprintToken(token))
  })
})
