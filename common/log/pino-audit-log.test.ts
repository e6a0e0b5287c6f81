import { type DestinationStream, pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { type AuditCaller, type AuditLog, type AuditRecord, fingerprintToken } from './audit-log.js'
import { auditLine, PinoAuditLog } from './pino-audit-log.js'
import { REDACT_CENSOR, SECRET_FIELDS } from './secret-fields.js'

function memoryAudit() {
  const lines: string[] = []
  const destination: DestinationStream = { write: (line: string) => void lines.push(line) }
  const audit = new PinoAuditLog(destination)
  return { audit, lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) }
}

const WORKLOAD = { kind: 'workload', pid: 7, uid: 1000, gid: 1000, exe: '/bin/tool' } as const

describe('auditLine', () => {
  it('writes each record byte for byte as the pino logger the audit log used before did', () => {
    const written: string[] = []
    const time = '2026-01-02T03:04:05.678Z'
    const logger = pino(
      {
        level: 'info',
        base: undefined,
        timestamp: () => `"time":"${time}"`,
        formatters: { level: () => ({}) },
      },
      { write: (line: string) => void written.push(line) },
    )
    const records = [
      { event: 'svid.issued', outcome: 'allowed', actor: 'spiffe://td/a', caller: WORKLOAD, ttlMs: 5 },
      { event: 'e', outcome: 'denied', reason: 'quote " back\\ \n é 🔑 \u0001', skipped: undefined },
      { event: 'e', outcome: 'error', audience: ['x', 'y'], n: Number.NaN, nested: { u: undefined } },
      {},
    ] as unknown as AuditRecord[]
    for (const record of records) logger.info(record)
    const ours = records.map((r) => auditLine(r).replace(/"time":"[^"]*"/, `"time":"${time}"`))
    expect(ours).toEqual(written)
  })
})

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
      actor: 'unix:uid:1000:pid:7',
      caller: WORKLOAD,
      resource: 'spiffe://td/a',
      action: 'issue',
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

/** One valid event for every method of the port, with `extra` smuggled in (as a cast would). */
const EVERY_METHOD: ReadonlyArray<readonly [keyof AuditLog, (caller: AuditCaller) => object]> = [
  ['entryChanged', (caller) => ({ action: 'updated', entryId: 'e1', spiffeId: 'spiffe://td/a', caller })],
  [
    'tokenCreated',
    (caller) => ({ tokenId: fingerprintToken('t'), ttlMs: 1, aliasId: 'spiffe://td/n', caller }),
  ],
  ['tokenUsed', (caller) => ({ tokenId: fingerprintToken('t'), agentId: 'spiffe://td/ag', caller })],
  [
    'agentAttested',
    (caller) => ({ agentId: 'spiffe://td/ag', attestor: 'join_token', serial: '01', caller }),
  ],
  ['agentEvicted', (caller) => ({ agentId: 'spiffe://td/ag', caller })],
  ['agentBanned', (caller) => ({ agentId: 'spiffe://td/ag', caller })],
  ['svidIssued', (caller) => ({ spiffeId: 'spiffe://td/a', kind: 'jwt', ttlMs: 1, audience: ['x'], caller })],
  ['issuanceDenied', (caller) => ({ kind: 'x509', code: 'ERR_PEER_UNAUTHORIZED', reason: 'no', caller })],
  ['attestationResult', (caller) => ({ outcome: 'allowed', matched: ['spiffe://td/a'], caller })],
  ['callAllowed', (caller) => ({ method: '/m', via: 'jwt', caller })],
  ['callDenied', (caller) => ({ method: '/m', code: 'ERR_PEER_UNAUTHORIZED', reason: 'no', caller })],
  ['bundleChanged', (caller) => ({ trustDomain: 'td', action: 'set', caller })],
]

describe('PinoAuditLog and secrets smuggled into an event', () => {
  // A distinct secret-looking value per field name and place, so a leak names itself.
  const secret = (field: string, where: string) => `-----BEGIN PRIVATE KEY----- ${where}.${field} eyJhbGciOi`
  const smuggled = (where: string) =>
    Object.fromEntries(SECRET_FIELDS.map((field) => [field, secret(field, where)]))

  it('covers at least the tokens and keys', () => {
    expect(SECRET_FIELDS).toEqual(expect.arrayContaining(['token', 'joinToken', 'privateKey', 'jwtSvid']))
  })

  it.each(EVERY_METHOD)(
    '%s never writes one in clear, at any depth, and keeps the record',
    (method, event) => {
      const { audit, lines, records } = memoryAudit()
      const caller = { ...WORKLOAD, ...smuggled('caller') } as AuditCaller
      const wider = {
        ...event(caller),
        ...smuggled('top'),
        extra: smuggled('nested'),
        list: [smuggled('array')],
        req: { headers: smuggled('headers') },
        metadata: { authorization: secret('authorization', 'metadata') },
      }
      ;(audit[method] as (e: object) => void)(wider)
      expect(lines).toHaveLength(1)
      expect(lines[0]).not.toContain('BEGIN PRIVATE KEY')
      expect(lines[0]).not.toContain('eyJhbGciOi')
      const [record] = records()
      expect(record?.['caller']).toMatchObject({
        ...WORKLOAD,
        token: REDACT_CENSOR,
        privateKey: REDACT_CENSOR,
      })
      expect(record).toHaveProperty('event')
      expect(record).toHaveProperty('code')
    },
  )

  it('censors a smuggled field only, leaving the event and the caller’s objects alone', () => {
    const { audit, records } = memoryAudit()
    const caller = { ...WORKLOAD, joinToken: 'raw-join-token' }
    const event = { spiffeId: 'spiffe://td/a', kind: 'x509', ttlMs: 5, caller, token: 'raw-token' } as const
    audit.svidIssued(event)
    expect(records()[0]).toEqual({
      time: expect.any(String),
      event: 'svid.issued',
      outcome: 'allowed',
      actor: `unix:uid:${WORKLOAD.uid}:pid:${WORKLOAD.pid}`,
      caller: { ...WORKLOAD, joinToken: REDACT_CENSOR },
      resource: 'spiffe://td/a',
      action: 'issue',
      code: 'OK',
      kind: 'x509',
      ttlMs: 5,
      token: REDACT_CENSOR,
    })
    expect(caller.joinToken).toBe('raw-join-token')
    expect(event.token).toBe('raw-token')
  })
})
