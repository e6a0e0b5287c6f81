import type { Logger } from 'pino'
import type { Clock } from '../../lib/core/clock.js'
import { IdentityError } from '../../lib/core/errors.js'
import type { TaskRequest } from '../../lib/core/task/task-request.js'
import { errorCodeOf } from '../../lib/grpc/status.js'
import { ENDED_WATCH, identifyProcess, type ProcessIdentity, rewatchProcess } from './process-identity.js'
import type { ProcessWatch } from './process-watch.js'
import { type JournalRecord, TaskJournal } from './task-journal.js'

/** How a task ended: EndTask, its process exited, or its token expired. */
export type TaskEndReason = 'ended' | 'exited' | 'expired'

/** One task the agent asked a token for. */
export interface AgentTask {
  readonly taskId: string
  readonly spiffeId: string
  readonly entryId: string
  readonly request: TaskRequest
  readonly parentTaskId?: string
  /** The process that began it; 0 when detached. */
  readonly pid: number
  readonly uid: number
  readonly begunAtMs: number
  expiresAtMs: number
  endedAtMs?: number
  endReason?: TaskEndReason
  /** The server has been told of the end (an expiry needs no telling). */
  isReported?: boolean
  /** When telling the server was last tried. */
  lastReportMs?: number
}

/** Where ends are reported: the server (`EndTask` on the agent API). */
export interface TaskEndReporter {
  endTask(taskId: string, reason: 'ended' | 'exited'): Promise<void>
}

/** Options of {@link AgentTasks}. */
export interface AgentTasksDeps {
  readonly server: TaskEndReporter
  readonly clock: Clock
  readonly log: Logger
  /** How often processes that began tasks are checked; default {@link TASK_WATCH_MS}. */
  readonly watchEveryMs?: number
  /** How long an ended task stays listed; default {@link ENDED_KEPT_MS}. */
  readonly endedKeptMs?: number
  /** Where tasks are kept across a restart (`<data-dir>/tasks.json`); absent: in memory only. */
  readonly journalPath?: string
}

/** Processes that began tasks are checked this often: a task ends within about this of its process. */
export const TASK_WATCH_MS = 100
/** Ended and expired tasks stay listed this long. */
export const ENDED_KEPT_MS = 10 * 60_000
/** An end the server could not be told of is told again this often, until the token expires. */
export const REPORT_RETRY_MS = 5000
/** The file in the agent's data dir that keeps its tasks across a restart. */
export const TASK_JOURNAL_FILE = 'tasks.json'
/** Live tasks one uid may hold at once. */
export const MAX_LIVE_TASKS_PER_UID = 256

/**
 * The agent's tasks (DESIGN §11): each live task holds a pidfd of the process that began it (unless
 * detached); a sweep every {@link TASK_WATCH_MS} ends the tasks of processes that exited and tells
 * the server. Memory is bounded: live tasks per uid, ended ones forgotten after {@link ENDED_KEPT_MS}.
 * With a journal, tasks survive an agent restart ({@link AgentTasks.restore}).
 */
export class AgentTasks {
  readonly #deps: AgentTasksDeps
  readonly #tasks = new Map<string, AgentTask>()
  readonly #watches = new Map<string, ProcessWatch>()
  /** One pidfd per process however many tasks it began, by pid while that process lives. */
  readonly #byPid = new Map<number, { readonly watch: ProcessWatch; refs: number }>()
  /** The start time and executable of the process that began each watched task. */
  readonly #identities = new Map<string, ProcessIdentity>()
  readonly #journal: TaskJournal | undefined
  readonly #timer: NodeJS.Timeout

  constructor(deps: AgentTasksDeps) {
    this.#deps = deps
    this.#journal =
      deps.journalPath === undefined ? undefined : new TaskJournal(deps.journalPath, () => this.#records())
    this.#timer = setInterval(() => this.sweep(), deps.watchEveryMs ?? TASK_WATCH_MS)
    this.#timer.unref()
  }

  /** A task by id. */
  get(taskId: string): Readonly<AgentTask> | undefined {
    return this.#tasks.get(taskId)
  }

  /** Tasks whose SPIFFE ID is one of `spiffeIds`, oldest first. */
  listFor(spiffeIds: ReadonlySet<string>): ReadonlyArray<Readonly<AgentTask>> {
    return [...this.#tasks.values()].filter((t) => spiffeIds.has(t.spiffeId))
  }

  /** @throws ERR_THROTTLED when `uid` holds {@link MAX_LIVE_TASKS_PER_UID} live tasks */
  requireRoomFor(uid: number): void {
    let live = 0
    for (const t of this.#tasks.values()) if (t.uid === uid && t.endedAtMs === undefined) live++
    if (live >= MAX_LIVE_TASKS_PER_UID)
      throw new IdentityError('ERR_THROTTLED', `uid ${uid} holds ${live} live tasks; end some first`)
  }

  /**
   * A watch of the live process `pid` (the caller of a call being answered), shared by all its tasks:
   * an alive watch already held for that pid names that very process (two live processes never share
   * a pid), else `open` makes one. Closing the handle releases it; the last release closes the pidfd.
   */
  watchFor(pid: number, open: () => ProcessWatch): ProcessWatch {
    let shared = this.#byPid.get(pid)
    if (shared === undefined || !isAlive(shared.watch)) {
      shared = { watch: open(), refs: 0 }
      this.#byPid.set(pid, shared)
    }
    shared.refs++
    const held = shared
    let isClosed = false
    return {
      isAlive: () => !isClosed && held.watch.isAlive(),
      close: () => {
        if (isClosed) return
        isClosed = true
        held.refs--
        if (held.refs > 0) return
        held.watch.close()
        if (this.#byPid.get(pid) === held) this.#byPid.delete(pid)
      },
    }
  }

  /**
   * Records a task just begun, watched through `watch` (absent: detached), and saves it with the
   * start time and executable of its process (read while `watch` holds that process) before resolving.
   */
  async add(task: AgentTask, watch: ProcessWatch | undefined): Promise<void> {
    this.#tasks.set(task.taskId, task)
    if (watch === undefined) return this.#save()
    this.#watches.set(task.taskId, watch)
    if (this.#journal === undefined) return
    const identity = await identifyProcess(task.pid)
    // Read while the watch's pidfd still names that process: the facts are its own.
    if (identity !== undefined && isAlive(watch)) this.#identities.set(task.taskId, identity)
    return this.#save()
  }

  /**
   * After an agent restart: the tasks saved before it. Each whose process still runs (the same pid,
   * start time and executable) is watched again; every other is ended as `exited` and the server told
   * (retried until it hears), so its token is revoked. Returns how many were restored.
   */
  async restore(): Promise<number> {
    if (this.#journal === undefined) return 0
    let records: ReadonlyArray<JournalRecord>
    try {
      records = await this.#journal.load()
    } catch (err) {
      this.#deps.log.error({ err }, 'The saved tasks are unreadable; their processes are not watched.')
      return 0
    }
    const nowMs = this.#deps.clock.nowMs()
    for (const r of records) {
      if (r.expiresAtMs <= nowMs || this.#tasks.has(r.taskId)) continue
      const { process, endedAtMs, endReason, ...rest } = r
      const task: AgentTask = { ...rest, ...(endedAtMs !== undefined && { endedAtMs, endReason }) }
      this.#tasks.set(task.taskId, task)
      if (task.endedAtMs !== undefined || task.pid === 0) continue
      const watch = await rewatchProcess(task.pid, process)
      this.#watches.set(task.taskId, watch)
      if (watch !== ENDED_WATCH) this.#identities.set(task.taskId, process)
    }
    this.sweep()
    return records.length
  }

  /** A renewal's new expiry. */
  renewed(taskId: string, expiresAtMs: number): void {
    const task = this.#tasks.get(taskId)
    if (task === undefined) return
    task.expiresAtMs = expiresAtMs
    void this.#save()
  }

  /**
   * Ends a task here and tells the server (its errors are thrown; the end stands here).
   * @throws ERR_TASK_NOT_FOUND
   */
  async end(taskId: string, reason: 'ended' | 'exited'): Promise<void> {
    const task = this.#tasks.get(taskId)
    if (task === undefined) throw new IdentityError('ERR_TASK_NOT_FOUND', 'no such task')
    if (task.isReported === true || task.endReason === 'expired') return
    if (task.endedAtMs === undefined) this.#markEnded(task, reason)
    task.lastReportMs = this.#deps.clock.nowMs()
    try {
      await this.#deps.server.endTask(taskId, task.endReason === 'exited' ? 'exited' : 'ended')
    } catch (err) {
      // A server that no longer knows the task (it restarted) has nothing to revoke: told enough.
      if (errorCodeOf(err) !== 'ERR_TASK_NOT_FOUND') throw err
    }
    task.isReported = true
    void this.#save()
  }

  /** Ends the tasks of processes that exited, marks expired ones, forgets old ended ones. */
  sweep(): void {
    const nowMs = this.#deps.clock.nowMs()
    const keptMs = this.#deps.endedKeptMs ?? ENDED_KEPT_MS
    for (const task of this.#tasks.values()) {
      if (task.endedAtMs !== undefined) {
        if (task.endedAtMs + keptMs <= nowMs) this.#tasks.delete(task.taskId)
        else if (this.#isUnreported(task, nowMs)) this.#report(task)
        continue
      }
      const watch = this.#watches.get(task.taskId)
      if (watch !== undefined && !isAlive(watch)) {
        this.#markEnded(task, 'exited')
        this.#report(task)
      } else if (task.expiresAtMs <= nowMs) this.#markEnded(task, 'expired')
    }
  }

  /** Stops watching (the agent is stopping); tasks are not ended. */
  close(): void {
    clearInterval(this.#timer)
    for (const w of this.#watches.values()) w.close()
    this.#watches.clear()
  }

  /** An end the server has not heard of, last tried over {@link REPORT_RETRY_MS} ago, while the token lives. */
  #isUnreported(task: AgentTask, nowMs: number): boolean {
    if (task.isReported === true || task.endReason === 'expired' || task.expiresAtMs <= nowMs) return false
    return task.lastReportMs === undefined || task.lastReportMs + REPORT_RETRY_MS <= nowMs
  }

  #report(task: AgentTask): void {
    this.end(task.taskId, 'exited').catch((err: unknown) =>
      this.#deps.log.warn(
        { err, taskId: task.taskId },
        'Telling the server a task ended failed; will retry.',
      ),
    )
  }

  #markEnded(task: AgentTask, reason: TaskEndReason): void {
    task.endedAtMs = this.#deps.clock.nowMs()
    task.endReason = reason
    this.#watches.get(task.taskId)?.close()
    this.#watches.delete(task.taskId)
    this.#identities.delete(task.taskId)
    void this.#save()
  }

  /** Saves the tasks a restart must know of; a failure is logged (the tasks still end at expiry). */
  async #save(): Promise<void> {
    try {
      await this.#journal?.save()
    } catch (err) {
      this.#deps.log.warn({ err }, 'Saving the tasks failed; after a restart they end at their expiry.')
    }
  }

  /** Live tasks, and ended ones the server has not heard of, while their tokens live. */
  #records(): JournalRecord[] {
    const nowMs = this.#deps.clock.nowMs()
    const out: JournalRecord[] = []
    for (const t of this.#tasks.values()) {
      if (t.expiresAtMs <= nowMs || t.isReported === true || t.endReason === 'expired') continue
      const { endedAtMs, endReason, isReported: _r, lastReportMs: _l, ...rest } = t
      const process = this.#identities.get(t.taskId) ?? { startTime: '', exe: '' }
      out.push({
        ...rest,
        process,
        ...(endedAtMs !== undefined && endReason !== undefined && { endedAtMs, endReason }),
      })
    }
    return out
  }
}

/** Whether a watched process lives; a watch that cannot tell counts as ended. */
function isAlive(watch: ProcessWatch): boolean {
  try {
    return watch.isAlive()
  } catch {
    return false
  }
}
