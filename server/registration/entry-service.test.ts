import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type AuditCaller, MemoryAuditLog } from '../../common/log/audit-log.js'
import { type ErrorCode, IdentityError } from '../../lib/core/errors.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import { codeOf } from '../../test/helpers/error-code.js'
import {
  openTempDatastore,
  selectors,
  TEST_TRUST_DOMAIN,
  type TempDatastore,
  testEntryFields,
  testId,
} from '../../test/helpers/temp-datastore.js'
import { ServerEvents } from '../events.js'
import { EntryService } from './entry-service.js'

const caller: AuditCaller = { kind: 'admin', uid: 1000, pid: 42 }
let t: TempDatastore
let audit: MemoryAuditLog
let changes: number
let service: EntryService

beforeEach(async () => {
  t = await openTempDatastore()
  audit = new MemoryAuditLog(t.clock)
  const events = new ServerEvents()
  changes = 0
  events.on('entries-changed', () => {
    changes += 1
  })
  service = new EntryService({ trustDomain: TEST_TRUST_DOMAIN, store: t.store.entries, audit, events })
})
afterEach(async () => {
  await t.cleanup()
})

/** An audit log whose writes fail, as a full disk makes them (ERR_AUDIT_UNAVAILABLE). */
class FailingAuditLog extends MemoryAuditLog {
  protected override write(): void {
    throw new IdentityError('ERR_AUDIT_UNAVAILABLE', 'the audit log could not be written')
  }
}

describe('EntryService', () => {
  it('rolls a write back when its audit record cannot be written, and says so', async () => {
    const events = new ServerEvents()
    let announced = 0
    events.on('entries-changed', () => {
      announced += 1
    })
    const failing = new FailingAuditLog(t.clock)
    const strict = new EntryService({
      trustDomain: TEST_TRUST_DOMAIN,
      store: t.store.entries,
      audit: failing,
      events,
    })
    expect(await codeOf(strict.create(testEntryFields(), caller))).toBe('ERR_AUDIT_UNAVAILABLE')
    const kept = await service.create(testEntryFields({ spiffeId: testId('/kept') }), caller)
    expect(await codeOf(strict.delete(kept.id, caller))).toBe('ERR_AUDIT_UNAVAILABLE')
    expect(await codeOf(strict.createBatch([testEntryFields({ spiffeId: testId('/b') })], caller))).toBe(
      'ERR_AUDIT_UNAVAILABLE',
    )
    expect((await t.store.entries.list()).entries.map((e) => e.id)).toEqual([kept.id])
    expect(announced).toBe(0)
  })

  it('writes the records that go with a create (an approval’s) in its commit: both or neither', async () => {
    const entry = await service.create(testEntryFields(), caller, {
      correlationId: 'request-1',
      alsoAudit: (e) =>
        audit.approvalApproved({
          requestId: 'request-1',
          entryId: e.id,
          spiffeId: e.spiffeId.toString(),
          exePath: '/bin/tool',
          caller,
        }),
    })
    expect(audit.records.map((r) => [r.event, r.correlationId, r['entryId']])).toEqual([
      ['entry.changed', 'request-1', entry.id],
      ['approval.approved', 'request-1', entry.id],
    ])
    const failing = service.create(testEntryFields({ spiffeId: testId('/second') }), caller, {
      alsoAudit: () => {
        throw new IdentityError('ERR_AUDIT_UNAVAILABLE', 'the audit log could not be written')
      },
    })
    expect(await codeOf(failing)).toBe('ERR_AUDIT_UNAVAILABLE')
    expect((await t.store.entries.list()).entries.map((e) => e.id)).toEqual([entry.id])
  })

  it('creates an entry, audits it with the caller and announces the change', async () => {
    const entry = await service.create(testEntryFields(), caller)
    expect((await service.fetch(entry.id)).spiffeId.toString()).toBe('spiffe://example.org/web')
    expect(changes).toBe(1)
    expect(audit.recordsOf('entry.changed')).toEqual([
      expect.objectContaining({
        action: 'created',
        entryId: entry.id,
        resource: 'spiffe://example.org/web',
        outcome: 'allowed',
        code: 'OK',
        caller,
      }),
    ])
  })

  it.each<[string, Parameters<typeof testEntryFields>[0], ErrorCode]>([
    ['another trust domain', { spiffeId: SpiffeId.parse('spiffe://other.org/web') }, 'ERR_ENTRY_INVALID'],
    [
      'a parent in another trust domain',
      { parentId: SpiffeId.parse('spiffe://other.org/a') },
      'ERR_ENTRY_INVALID',
    ],
    ['no selector', { selectors: [] }, 'ERR_ENTRY_INVALID'],
    ['a negative TTL', { x509SvidTtlMs: -1 }, 'ERR_ENTRY_INVALID'],
  ])('refuses %s, audits the refusal and stores nothing', async (_name, overrides, code) => {
    expect(await codeOf(service.create(testEntryFields(overrides), caller))).toBe(code)
    expect(await t.store.entries.count()).toBe(0)
    expect(changes).toBe(0)
    expect(audit.recordsOf('entry.changed')).toEqual([
      expect.objectContaining({ action: 'created', outcome: 'error', code }),
    ])
  })

  it('refuses a duplicate entry with ERR_ENTRY_EXISTS', async () => {
    await service.create(testEntryFields(), caller)
    expect(await codeOf(service.create(testEntryFields(), caller))).toBe('ERR_ENTRY_EXISTS')
    expect(await t.store.entries.count()).toBe(1)
    expect(audit.records.map((r) => r.code)).toEqual(['OK', 'ERR_ENTRY_EXISTS'])
  })

  it('creates a batch item by item, in order, announcing once', async () => {
    const results = await service.createBatch(
      [
        testEntryFields({ spiffeId: testId('/a') }),
        testEntryFields({ spiffeId: SpiffeId.parse('spiffe://other.org/b') }),
        testEntryFields({ spiffeId: testId('/c') }),
      ],
      caller,
    )
    expect(results.map((r) => (r.ok ? r.entry.spiffeId.toString() : r.error.code))).toEqual([
      'spiffe://example.org/a',
      'ERR_ENTRY_INVALID',
      'spiffe://example.org/c',
    ])
    expect(changes).toBe(1)
    expect(audit.records.map((r) => [r.resource, r.code])).toEqual([
      ['spiffe://example.org/a', 'OK'],
      ['spiffe://other.org/b', 'ERR_ENTRY_INVALID'],
      ['spiffe://example.org/c', 'OK'],
    ])
  })

  it('updates only the expected revision', async () => {
    const entry = await service.create(testEntryFields(), caller)
    const updated = await service.update(entry.id, testEntryFields({ hint: 'v1' }), {
      expectedRevision: 0,
      caller,
    })
    expect([updated.revision, updated.hint]).toEqual([1, 'v1'])
    const stale = service.update(entry.id, testEntryFields({ hint: 'v2' }), { expectedRevision: 0, caller })
    expect(await codeOf(stale)).toBe('ERR_ENTRY_REVISION_CONFLICT')
    expect((await service.fetch(entry.id)).hint).toBe('v1')
    expect(changes).toBe(2)
    expect(audit.records.map((r) => [r['action'], r.code])).toEqual([
      ['created', 'OK'],
      ['updated', 'OK'],
      ['updated', 'ERR_ENTRY_REVISION_CONFLICT'],
    ])
  })

  it('deletes an entry and audits its SPIFFE ID', async () => {
    const entry = await service.create(testEntryFields({ selectors: selectors('unix:uid:7') }), caller)
    const deleted = await service.delete(entry.id, caller)
    expect(deleted.id).toBe(entry.id)
    expect(await codeOf(service.fetch(entry.id))).toBe('ERR_ENTRY_NOT_FOUND')
    expect(await codeOf(service.delete(entry.id, caller))).toBe('ERR_ENTRY_NOT_FOUND')
    expect(changes).toBe(2)
    expect(audit.records.slice(1).map((r) => [r['action'], r.resource, r.code])).toEqual([
      ['deleted', 'spiffe://example.org/web', 'OK'],
      ['deleted', '-', 'ERR_ENTRY_NOT_FOUND'],
    ])
  })

  it('lists with filters and pages', async () => {
    for (const name of ['a', 'b', 'c'])
      await service.create(testEntryFields({ spiffeId: testId(`/${name}`) }), caller)
    const first = await service.list({}, { pageSize: 2 })
    expect(first.entries).toHaveLength(2)
    const rest = await service.list({}, { pageSize: 2, pageToken: first.nextPageToken ?? '' })
    expect(rest.entries).toHaveLength(1)
    expect(rest.nextPageToken).toBeUndefined()
    const bySpiffeId = await service.list({ spiffeId: testId('/b') }, {})
    expect(bySpiffeId.entries.map((e) => e.spiffeId.toString())).toEqual(['spiffe://example.org/b'])
    expect(await codeOf(service.list({}, { pageToken: 'junk!' }))).toBe('ERR_PAGE_TOKEN_INVALID')
  })
})
