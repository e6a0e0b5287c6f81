import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { MemoryAuditLog } from '../../common/log/audit-log.js'
import { ManualClock } from '../../lib/core/clock.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import { codeOf } from '../../test/helpers/error-code.js'
import {
  openTempDatastore,
  TEST_START_MS,
  TEST_TRUST_DOMAIN,
  type TempDatastore,
} from '../../test/helpers/temp-datastore.js'
import { ServerEvents } from '../events.js'
import { RevocationService, type RevokeRequest } from './revocation-service.js'

const ADMIN = { kind: 'admin', uid: 0 } as const
const HOUR = 3_600_000
const ID = 'spiffe://example.org/w'
let t: TempDatastore
let clock: ManualClock
let audit: MemoryAuditLog
let events: ServerEvents
let changes: number

function service(limit?: number): RevocationService {
  return new RevocationService({
    store: t.store.revocations,
    audit,
    events,
    clock,
    trustDomain: TEST_TRUST_DOMAIN,
    latestExpiryMs: () => TEST_START_MS + HOUR,
    ...(limit !== undefined && { limit }),
  })
}

beforeEach(async () => {
  t = await openTempDatastore()
  clock = new ManualClock(TEST_START_MS + 400)
  audit = new MemoryAuditLog(clock)
  events = new ServerEvents()
  changes = 0
  events.on('revocations-changed', () => changes++)
})
afterEach(async () => {
  await t.cleanup()
})

describe('RevocationService', () => {
  it('revokes a SPIFFE ID up to the next whole second, audits it, announces it and holds issuance until then', async () => {
    const s = service()
    const stored = await s.revoke({ kind: 'spiffe-id', value: ID, reason: 'leaked' }, ADMIN)
    expect(stored).toMatchObject({
      kind: 'spiffe-id',
      value: ID,
      issuedBeforeMs: TEST_START_MS + 1000,
      keepUntilMs: TEST_START_MS + HOUR,
      revokedBy: 'admin uid 0',
    })
    expect(audit.recordsOf('credential.revoked')).toEqual([
      expect.objectContaining({
        outcome: 'allowed',
        resource: ID,
        action: 'revoke',
        reason: 'leaked',
        code: 'OK',
      }),
    ])
    expect(changes).toBe(1)
    const id = SpiffeId.parse(ID)
    expect(s.issuableAtMs(id)).toBe(TEST_START_MS + 1000)
    expect(s.current().find({ kind: 'jwt', id, issuedAtMs: TEST_START_MS })).toBeDefined()
    expect(s.current().find({ kind: 'jwt', id, issuedAtMs: TEST_START_MS + 1000 })).toBeUndefined()
    clock.set(TEST_START_MS + 999)
    await s.waitUntilIssuable(id) // at most a millisecond here
  })

  it('keeps what it stored across a restart', async () => {
    await service().revoke({ kind: 'x509-serial', value: '00:AB:01', reason: '' }, ADMIN)
    await t.reopen()
    const again = service()
    await again.start()
    expect(again.current().revocations.map((r) => r.value)).toEqual(['ab01'])
  })

  it.each<[string, RevokeRequest]>([
    ['a serial that is not hex', { kind: 'x509-serial', value: 'zz', reason: '' }],
    ['a serial over 20 bytes', { kind: 'x509-serial', value: 'ab'.repeat(21), reason: '' }],
    ['an empty jti', { kind: 'jwt-id', value: '', reason: '' }],
    ['a jti with a space', { kind: 'jwt-id', value: 'a b', reason: '' }],
    ['a jti over 256 characters', { kind: 'jwt-id', value: 'j'.repeat(257), reason: '' }],
    ['another trust domain', { kind: 'spiffe-id', value: 'spiffe://other.org/w', reason: '' }],
    ["Tessera's own ID", { kind: 'spiffe-id', value: 'spiffe://example.org/tessera/server', reason: '' }],
    ['not a SPIFFE ID', { kind: 'spiffe-id', value: 'https://example.org/w', reason: '' }],
    ['a reason with a control character', { kind: 'jwt-id', value: 'j', reason: 'a\nb' }],
    ['an unknown kind', { kind: 'everything' as never, value: 'x', reason: '' }],
    ['a task that already ended', { kind: 'task', value: 't', reason: '', keepUntilMs: TEST_START_MS }],
  ])('refuses %s with ERR_REVOCATION_INVALID, audited, nothing stored', async (_name, request) => {
    const s = service()
    expect(await codeOf(s.revoke(request, ADMIN))).toBe('ERR_REVOCATION_INVALID')
    expect(audit.recordsOf('credential.revoked')).toEqual([
      expect.objectContaining({ outcome: 'error', code: 'ERR_REVOCATION_INVALID' }),
    ])
    expect(await t.store.revocations.list(0)).toEqual([])
    expect(changes).toBe(0)
  })

  it('refuses past its limit with ERR_REVOCATION_LIMIT, audited', async () => {
    const s = service(1)
    await s.revoke({ kind: 'jwt-id', value: 'a', reason: '' }, ADMIN)
    expect(await codeOf(s.revoke({ kind: 'jwt-id', value: 'b', reason: '' }, ADMIN))).toBe(
      'ERR_REVOCATION_LIMIT',
    )
    expect(audit.recordsOf('credential.revoked').at(-1)).toMatchObject({ code: 'ERR_REVOCATION_LIMIT' })
  })

  it('prunes what is past its keep-until time and announces it', async () => {
    const s = service()
    await s.revoke({ kind: 'task', value: 'task-1', reason: '', keepUntilMs: TEST_START_MS + 5000 }, ADMIN)
    await s.revoke({ kind: 'jwt-id', value: 'j', reason: '' }, ADMIN)
    clock.set(TEST_START_MS + 5000)
    expect(s.current().revocations.map((r) => r.value)).toEqual(['j'])
    expect(await s.prune()).toBe(1)
    expect(changes).toBe(3)
    expect(await s.prune()).toBe(0)
    expect(changes).toBe(3)
  })
})
