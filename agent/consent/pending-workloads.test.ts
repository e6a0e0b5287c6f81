import pino from 'pino'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { PendingWorkload } from '../../common/gen/tessera/agent/v1/PendingWorkload.js'
import { MemoryAuditLog } from '../../common/log/audit-log.js'
import type { ProcessFacts } from '../../common/peercred/process-facts.js'
import { ManualClock } from '../../lib/core/clock.js'
import { Selector } from '../../lib/core/selector.js'
import type { AttestedCaller } from '../workload-api/caller.js'
import { PendingWorkloads, REPORT_DELAY_MS, REPORT_RETRY_MS } from './pending-workloads.js'

/** Records what would go to the server; fails the next `failures` calls. */
class RecordingReporter {
  readonly calls: Array<{ workloads: PendingWorkload[]; dropped: number }> = []
  failures = 0
  async reportPending(workloads: ReadonlyArray<PendingWorkload>, dropped: number): Promise<void> {
    if (this.failures > 0) {
      this.failures--
      throw new Error('server unreachable')
    }
    this.calls.push({ workloads: [...workloads], dropped })
  }
}

function caller(uid: number, path: string, hash = 'aa'.repeat(32)): AttestedCaller {
  const facts = {
    pid: 4242,
    uid,
    gid: uid,
    groups: [],
    exe: path,
    exeId: { dev: 1, ino: 2 },
    cgroups: [{ hierarchyId: 0, controllers: [], path: '/user.slice' }],
    weak: false,
  } as unknown as ProcessFacts
  const selectors = [`uid:${uid}`, 'user:someone', `path:${path}`, `sha256:${hash}`].map((v) =>
    Selector.from('unix', v),
  )
  return { facts, selectors }
}

describe('PendingWorkloads', () => {
  let reporter: RecordingReporter
  let audit: MemoryAuditLog
  let pending: PendingWorkloads
  beforeEach(() => {
    vi.useFakeTimers()
    reporter = new RecordingReporter()
    audit = new MemoryAuditLog()
    pending = new PendingWorkloads({
      reporter,
      clock: new ManualClock(1_000_000),
      audit,
      log: pino({ level: 'silent' }),
      maxWorkloads: 2,
      procRoot: '/nonexistent-proc',
    })
  })
  afterEach(() => {
    pending.close()
    vi.useRealTimers()
  })

  it('reports a burst of refusals of one workload as one item with its count', async () => {
    for (let i = 0; i < 5; i++) expect(pending.noteRefused(caller(1000, '/bin/a'))).toBe(true)
    await vi.advanceTimersByTimeAsync(REPORT_DELAY_MS)
    expect(reporter.calls).toEqual([
      {
        dropped: 0,
        workloads: [
          expect.objectContaining({
            uid: 1000,
            gid: 1000,
            user_name: 'someone',
            exe_path: '/bin/a',
            sha256: 'aa'.repeat(32),
            cgroup: '/user.slice',
            parent_exe: '',
            count: 5,
          }),
        ],
      },
    ])
    pending.noteRefused(caller(1000, '/bin/a'))
    await vi.advanceTimersByTimeAsync(REPORT_DELAY_MS)
    expect(reporter.calls[1]?.workloads.map((w) => w.count)).toEqual([1])
  })

  it('keeps at most its limit, dropping the least recently seen, counting drops and auditing the first only', async () => {
    pending.noteRefused(caller(1, '/bin/a'))
    pending.noteRefused(caller(2, '/bin/b'))
    pending.noteRefused(caller(1, '/bin/a')) // a is now the most recent
    pending.noteRefused(caller(3, '/bin/c')) // drops b
    pending.noteRefused(caller(4, '/bin/d')) // drops a
    await vi.advanceTimersByTimeAsync(REPORT_DELAY_MS)
    expect(reporter.calls).toHaveLength(1)
    expect(reporter.calls[0]?.dropped).toBe(2)
    expect(reporter.calls[0]?.workloads.map((w) => w.exe_path)).toEqual(['/bin/c', '/bin/d'])
    expect(audit.records.filter((r) => r.code === 'ERR_PENDING_LIMIT')).toEqual([
      expect.objectContaining({
        event: 'approval.dropped',
        resource: 'pending-requests:agent',
        count: 1,
        outcome: 'denied',
      }),
    ])
  })

  it('keeps what a failed report carried and sends it again', async () => {
    reporter.failures = 1
    pending.noteRefused(caller(1, '/bin/a'))
    await vi.advanceTimersByTimeAsync(REPORT_DELAY_MS)
    expect(reporter.calls).toHaveLength(0)
    pending.noteRefused(caller(1, '/bin/a'))
    await vi.advanceTimersByTimeAsync(REPORT_RETRY_MS)
    expect(reporter.calls.map((c) => c.workloads.map((w) => w.count))).toEqual([[2]])
  })

  it('ignores a caller without a binary hash: nothing could pin an approval to it', async () => {
    const c = caller(1, '/bin/a')
    const unhashed = { ...c, selectors: c.selectors.filter((s) => !s.value.startsWith('sha256:')) }
    expect(pending.noteRefused(unhashed)).toBe(false)
    await vi.advanceTimersByTimeAsync(REPORT_DELAY_MS)
    expect(reporter.calls).toHaveLength(0)
  })
})
