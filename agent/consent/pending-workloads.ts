import { readFileSync, readlinkSync } from 'node:fs'
import type { Logger } from 'pino'
import type { PendingWorkload } from '../../common/gen/tessera/agent/v1/PendingWorkload.js'
import type { AuditLog } from '../../common/log/audit-log.js'
import type { ProcessFacts } from '../../common/peercred/process-facts.js'
import type { Clock } from '../../lib/core/clock.js'
import type { Selector } from '../../lib/core/selector.js'
import type { AttestedCaller } from '../workload-api/caller.js'
import { workloadCaller } from '../workload-api/context.js'

/** Most refused workloads the agent keeps between reports; past it the least recently seen is dropped. */
export const MAX_PENDING_WORKLOADS = 256
/** How long refusals are gathered before they are reported (one call for a burst). */
export const REPORT_DELAY_MS = 100
/** How long after a failed report the agent tries again. */
export const REPORT_RETRY_MS = 1000

/** Where the agent reports to (the server client implements it). */
export interface PendingReporter {
  reportPending(workloads: ReadonlyArray<PendingWorkload>, dropped: number): Promise<void>
}

/** Options of {@link PendingWorkloads}. */
export interface PendingWorkloadsDeps {
  readonly reporter: PendingReporter
  readonly clock: Clock
  readonly audit: AuditLog
  readonly log: Logger
  readonly maxWorkloads?: number
  /** The `/proc` root the parent's executable is read from; default `/proc`. */
  readonly procRoot?: string
}

interface Tracked {
  readonly workload: Omit<PendingWorkload, 'count' | 'last_seen_ms'>
  lastSeenMs: number
  /** Refusals not yet reported. */
  unsent: number
}

/**
 * The Workload API callers that matched no entry (DESIGN §10), deduplicated by (uid, sha256, path)
 * and bounded ({@link MAX_PENDING_WORKLOADS}, the least recently seen dropped and counted, the first
 * drop audited); reported to the server shortly after each new refusal, retried when that fails.
 * A caller without a binary hash (not hashed, or its pins withheld) is no pending request: nothing
 * could pin an approval to it.
 */
export class PendingWorkloads {
  readonly #deps: PendingWorkloadsDeps
  readonly #items = new Map<string, Tracked>()
  #dropped = 0
  #isDropAudited = false
  #timer: NodeJS.Timeout | undefined
  #isSending = false
  #isClosed = false

  constructor(deps: PendingWorkloadsDeps) {
    this.#deps = deps
  }

  /** Notes a caller that matched no entry; true when it is (now) a pending request. */
  noteRefused(caller: AttestedCaller): boolean {
    const sha256 = unixValue(caller.selectors, 'sha256:')
    const path = unixValue(caller.selectors, 'path:')
    if (sha256 === undefined || path === undefined || this.#isClosed) return false
    const { facts } = caller
    const key = `${facts.uid}\0${sha256}\0${path}`
    const nowMs = this.#deps.clock.nowMs()
    const known = this.#items.get(key)
    if (known !== undefined) {
      this.#items.delete(key) // re-inserted last: the map stays ordered by last sighting
      known.lastSeenMs = nowMs
      known.unsent++
      this.#items.set(key, known)
    } else {
      this.#makeRoom(caller)
      const workload = {
        uid: facts.uid,
        user_name: unixValue(caller.selectors, 'user:') ?? '',
        gid: facts.gid,
        exe_path: path,
        sha256,
        cgroup: cgroupOf(facts),
        parent_exe: this.#parentExe(facts),
        first_seen_ms: nowMs,
      }
      this.#items.set(key, { workload, lastSeenMs: nowMs, unsent: 1 })
    }
    this.#schedule(REPORT_DELAY_MS)
    return true
  }

  /** Stops reporting. */
  close(): void {
    this.#isClosed = true
    clearTimeout(this.#timer)
  }

  #makeRoom(caller: AttestedCaller): void {
    const max = this.#deps.maxWorkloads ?? MAX_PENDING_WORKLOADS
    while (this.#items.size >= max) {
      const oldest = this.#items.keys().next().value
      if (oldest === undefined) break
      this.#items.delete(oldest)
      this.#dropped++
      if (!this.#isDropAudited) {
        this.#isDropAudited = true
        const who = workloadCaller(caller.facts)
        this.#deps.audit.approvalDropped({ store: 'agent', limit: max, count: this.#dropped, caller: who })
      }
    }
  }

  #schedule(delayMs: number): void {
    if (this.#timer !== undefined || this.#isClosed) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.#send()
    }, delayMs)
    this.#timer.unref()
  }

  async #send(): Promise<void> {
    if (this.#isSending) return this.#schedule(REPORT_DELAY_MS)
    const batch = [...this.#items.values()].filter((t) => t.unsent > 0)
    const sent = batch.map((t) => t.unsent)
    const dropped = this.#dropped
    if (batch.length === 0 && dropped === 0) return
    this.#isSending = true
    try {
      const workloads = batch.map((t) => ({ ...t.workload, last_seen_ms: t.lastSeenMs, count: t.unsent }))
      await this.#deps.reporter.reportPending(workloads, dropped)
      batch.forEach((t, i) => {
        t.unsent -= sent[i] ?? 0
      })
      this.#dropped -= dropped
    } catch (err) {
      this.#deps.log.warn({ err }, 'Reporting pending workloads to the server failed; will retry.')
      this.#schedule(REPORT_RETRY_MS)
    } finally {
      this.#isSending = false
    }
  }

  /** The parent process's executable, read once when a workload is first seen; '' when unreadable. */
  #parentExe(facts: ProcessFacts): string {
    return parentExeOf(facts, this.#deps.procRoot)
  }
}

/** The parent process's executable; '' when unreadable. */
export function parentExeOf(facts: ProcessFacts, procRoot = '/proc'): string {
  try {
    const status = readFileSync(`${procRoot}/${facts.pid}/status`, 'utf8')
    const ppid = /^PPid:\s*(\d+)$/m.exec(status)?.[1]
    return ppid === undefined || ppid === '0' ? '' : readlinkSync(`${procRoot}/${ppid}/exe`)
  } catch {
    return ''
  }
}

/** The value of a caller's `unix:<prefix>…` selector. */
export function unixValue(selectors: ReadonlyArray<Selector>, prefix: string): string | undefined {
  const found = selectors.find((s) => s.type === 'unix' && s.value.startsWith(prefix))
  return found?.value.slice(prefix.length)
}

/** The cgroup v2 path, else the first hierarchy's; '' when none. */
export function cgroupOf(facts: ProcessFacts): string {
  return (facts.cgroups.find((c) => c.hierarchyId === 0) ?? facts.cgroups[0])?.path ?? ''
}
