import { randomUUID } from 'node:crypto'
import type Database from 'better-sqlite3'
import type {
  PendingChange,
  PendingKind,
  PendingRequest,
  PendingSighting,
  PendingState,
  PendingTask,
  PreviousApproval,
  TaskPendingInput,
} from '../../consent/pending-request.js'
import type {
  PendingDecision,
  PendingReportOptions,
  PendingReportResult,
  PendingRequestStore,
  TaskRequestOptions,
  TaskRequestResult,
} from '../ports.js'
import { guard } from './guard.js'

interface PendingRow {
  readonly id: string
  readonly agent_id: string
  readonly uid: number
  readonly user_name: string
  readonly gid: number
  readonly exe_path: string
  readonly sha256: string
  readonly cgroup: string
  readonly parent_exe: string
  readonly first_seen_ms: number
  readonly last_seen_ms: number
  readonly count: number
  readonly state: PendingState
  readonly decided_at_ms: number | null
  readonly denied_until_ms: number | null
  readonly entry_id: string | null
  readonly change: '' | PendingChange
  readonly previous_request_id: string
  readonly previous_sha256: string
  readonly previous_uid: number | null
  readonly kind: PendingKind
  readonly task_json: string
  readonly wait_until_ms: number | null
}

function fromRow(row: PendingRow): PendingRequest {
  return Object.freeze({
    id: row.id,
    kind: row.kind,
    task: row.kind === 'task' ? (JSON.parse(row.task_json) as PendingTask) : undefined,
    waitUntilMs: row.kind === 'task' ? (row.wait_until_ms ?? 0) : undefined,
    agentId: row.agent_id,
    uid: row.uid,
    userName: row.user_name,
    gid: row.gid,
    exePath: row.exe_path,
    sha256: row.sha256,
    cgroup: row.cgroup,
    parentExe: row.parent_exe,
    firstSeenMs: row.first_seen_ms,
    lastSeenMs: row.last_seen_ms,
    count: row.count,
    state: row.state,
    decidedAtMs: row.decided_at_ms ?? undefined,
    deniedUntilMs: row.denied_until_ms ?? undefined,
    entryId: row.entry_id ?? undefined,
    previous:
      row.change === ''
        ? undefined
        : {
            change: row.change,
            requestId: row.previous_request_id,
            sha256: row.previous_sha256,
            uid: row.previous_uid ?? 0,
          },
  })
}

const COLUMNS =
  'id, agent_id, uid, user_name, gid, exe_path, sha256, cgroup, parent_exe, first_seen_ms, last_seen_ms, count, state, decided_at_ms, denied_until_ms, entry_id, change, previous_request_id, previous_sha256, previous_uid, kind, task_json, wait_until_ms'

/** The columns of a new row that say who asked: the request id, its agent and the attested facts. */
function factColumns(id: string, agentId: string, facts: PendingSighting['facts']) {
  return {
    id,
    agent_id: agentId,
    uid: facts.uid,
    user_name: facts.userName,
    gid: facts.gid,
    exe_path: facts.exePath,
    sha256: facts.sha256,
    cgroup: facts.cgroup,
    parent_exe: facts.parentExe,
  }
}

/** The {@link PendingRequestStore} on SQLite (table `pending_requests`, schema versions 2, 3 and 6). */
export class SqlitePendingRequestStore implements PendingRequestStore {
  readonly #report: (s: PendingSighting, o: PendingReportOptions) => PendingReportResult
  readonly #fetch: Database.Statement<[string], PendingRow>
  readonly #list: Database.Statement<[], PendingRow>
  readonly #decide: Database.Statement<[string, number, number | null, string, number, number], PendingRow>
  readonly #setEntry: Database.Statement<[string, string]>
  readonly #reopen: Database.Statement<[string]>
  readonly #withdraw: Database.Statement<[number, number, string], PendingRow>
  readonly #requestTask: (t: TaskPendingInput, o: TaskRequestOptions) => TaskRequestResult
  readonly #endWait: Database.Statement<[number, string]>

  constructor(db: Database.Database) {
    const latest = db.prepare<[string, number, string, string], PendingRow>(
      `SELECT ${COLUMNS} FROM pending_requests WHERE kind = 'workload' AND agent_id = ? AND uid = ? AND sha256 = ? AND exe_path = ? ORDER BY last_seen_ms DESC LIMIT 1`,
    )
    const entryExpiry = db.prepare<[string], { expires_at_ms: number | null }>(
      'SELECT expires_at_ms FROM entries WHERE id = ?',
    )
    const count = db.prepare<[number, number, string]>(
      'UPDATE pending_requests SET count = count + ?, last_seen_ms = max(last_seen_ms, ?) WHERE id = ?',
    )
    const total = db.prepare<[], number>('SELECT count(*) FROM pending_requests').pluck()
    const drop = db.prepare<[number]>(
      'DELETE FROM pending_requests WHERE id IN (SELECT id FROM pending_requests ORDER BY last_seen_ms ASC LIMIT ?)',
    )
    const insert = db.prepare(
      `INSERT INTO pending_requests (${COLUMNS}, task_key) VALUES (@id, @agent_id, @uid, @user_name, @gid, @exe_path, @sha256, @cgroup, @parent_exe, @first_seen_ms, @last_seen_ms, @count, 'pending', NULL, NULL, NULL, @change, @previous_request_id, @previous_sha256, @previous_uid, @kind, @task_json, @wait_until_ms, @task_key)`,
    )
    // Re-consent: the latest approval of the same path under another hash, else of the same hash
    // under another uid (the same agent's).
    const approvedPath = db.prepare<[string, string, string], PendingRow>(
      `SELECT ${COLUMNS} FROM pending_requests WHERE kind = 'workload' AND agent_id = ? AND exe_path = ? AND state = 'approved' AND sha256 != ? ORDER BY decided_at_ms DESC LIMIT 1`,
    )
    const approvedHash = db.prepare<[string, string, number], PendingRow>(
      `SELECT ${COLUMNS} FROM pending_requests WHERE kind = 'workload' AND agent_id = ? AND sha256 = ? AND state = 'approved' AND uid != ? ORDER BY decided_at_ms DESC LIMIT 1`,
    )
    const previousOf = (s: PendingSighting, same: PendingRow | undefined): PreviousApproval | undefined => {
      const { facts } = s
      const pick = (change: PendingChange, r: PendingRow) => ({
        change,
        requestId: r.id,
        sha256: r.sha256,
        uid: r.uid,
      })
      if (same?.state === 'approved') return pick('expired', same)
      const binary = approvedPath.get(s.agentId, facts.exePath, facts.sha256)
      if (binary !== undefined) return pick('binary', binary)
      const user = approvedHash.get(s.agentId, facts.sha256, facts.uid)
      return user === undefined ? undefined : pick('user', user)
    }
    this.#fetch = db.prepare(`SELECT ${COLUMNS} FROM pending_requests WHERE id = ?`)
    this.#list = db.prepare(`SELECT ${COLUMNS} FROM pending_requests ORDER BY last_seen_ms DESC, id`)
    const isLive = (row: PendingRow, o: PendingReportOptions): boolean => {
      if (row.state === 'pending') return row.last_seen_ms + o.pendingTtlMs > o.nowMs
      if (row.state === 'denied') return (row.denied_until_ms ?? 0) > o.nowMs
      if (row.entry_id === null) return true // being approved right now
      const entry = entryExpiry.get(row.entry_id)
      return entry !== undefined && (entry.expires_at_ms === null || entry.expires_at_ms > o.nowMs)
    }
    this.#report = db
      .transaction((s: PendingSighting, o: PendingReportOptions): PendingReportResult => {
        const { facts } = s
        const row = latest.get(s.agentId, facts.uid, facts.sha256, facts.exePath)
        if (row !== undefined && isLive(row, o)) {
          count.run(s.count, s.lastSeenMs, row.id)
          return { request: fromRow(this.#fetch.get(row.id) as PendingRow), isNew: false, dropped: 0 }
        }
        const over = total.get()! - o.maxRequests + 1
        const dropped = over > 0 ? drop.run(over).changes : 0
        const id = randomUUID()
        const previous = previousOf(s, row)
        insert.run({
          ...factColumns(id, s.agentId, facts),
          first_seen_ms: s.firstSeenMs,
          last_seen_ms: s.lastSeenMs,
          count: s.count,
          change: previous?.change ?? '',
          previous_request_id: previous?.requestId ?? '',
          previous_sha256: previous?.sha256 ?? '',
          previous_uid: previous?.uid ?? null,
          kind: 'workload',
          task_json: '',
          wait_until_ms: null,
          task_key: '',
        })
        return { request: fromRow(this.#fetch.get(id) as PendingRow), isNew: true, dropped }
      })
      .immediate.bind(null) as (s: PendingSighting, o: PendingReportOptions) => PendingReportResult
    this.#decide = db.prepare(
      `UPDATE pending_requests SET state = ?, decided_at_ms = ?, denied_until_ms = ? WHERE id = ? AND state = 'pending' AND (kind = 'workload' AND last_seen_ms > ? OR kind = 'task' AND wait_until_ms > ?) RETURNING ${COLUMNS}`,
    ) as unknown as Database.Statement<[string, number, number | null, string, number, number], PendingRow>
    this.#setEntry = db.prepare('UPDATE pending_requests SET entry_id = ? WHERE id = ?')
    this.#reopen = db.prepare(
      "UPDATE pending_requests SET state = 'pending', decided_at_ms = NULL, denied_until_ms = NULL, entry_id = NULL WHERE id = ?",
    )
    this.#withdraw = db.prepare(
      `UPDATE pending_requests SET state = 'denied', decided_at_ms = ?, denied_until_ms = ? WHERE id = ? AND state = 'approved' RETURNING ${COLUMNS}`,
    ) as unknown as Database.Statement<[number, number, string], PendingRow>
    const deniedTask = db.prepare<[string, number], PendingRow>(
      `SELECT ${COLUMNS} FROM pending_requests WHERE task_key = ? AND state = 'denied' AND denied_until_ms > ? ORDER BY decided_at_ms DESC LIMIT 1`,
    )
    this.#requestTask = db
      .transaction((t: TaskPendingInput, o: TaskRequestOptions): TaskRequestResult => {
        const denied = deniedTask.get(t.taskKey, o.nowMs)
        if (denied !== undefined) {
          count.run(1, o.nowMs, denied.id)
          return { request: fromRow(this.#fetch.get(denied.id) as PendingRow), isDenied: true, dropped: 0 }
        }
        const over = total.get()! - o.maxRequests + 1
        const dropped = over > 0 ? drop.run(over).changes : 0
        const { facts } = t
        const id = randomUUID()
        insert.run({
          ...factColumns(id, t.agentId, facts),
          first_seen_ms: o.nowMs,
          last_seen_ms: o.nowMs,
          count: 1,
          change: '',
          previous_request_id: '',
          previous_sha256: '',
          previous_uid: null,
          kind: 'task',
          task_json: JSON.stringify(t.task),
          wait_until_ms: o.waitUntilMs,
          task_key: t.taskKey,
        })
        return { request: fromRow(this.#fetch.get(id) as PendingRow), isDenied: false, dropped }
      })
      .immediate.bind(null) as (t: TaskPendingInput, o: TaskRequestOptions) => TaskRequestResult
    this.#endWait = db.prepare(
      "UPDATE pending_requests SET wait_until_ms = min(wait_until_ms, ?) WHERE id = ? AND kind = 'task' AND state = 'pending'",
    )
  }

  async report(sighting: PendingSighting, options: PendingReportOptions): Promise<PendingReportResult> {
    return guard('record a pending request', () => this.#report(sighting, options))
  }

  async requestTask(input: TaskPendingInput, options: TaskRequestOptions): Promise<TaskRequestResult> {
    return guard('record a task request', () => this.#requestTask(input, options))
  }

  async endWait(id: string, nowMs: number): Promise<void> {
    guard('end a task request', () => this.#endWait.run(nowMs, id))
  }

  async fetch(id: string): Promise<PendingRequest | undefined> {
    const row = guard('read a pending request', () => this.#fetch.get(id))
    return row === undefined ? undefined : fromRow(row)
  }

  async list(): Promise<ReadonlyArray<PendingRequest>> {
    return guard('list pending requests', () => this.#list.all().map(fromRow))
  }

  async decide(id: string, d: PendingDecision): Promise<PendingRequest | undefined> {
    const row = guard('decide a pending request', () =>
      this.#decide.get(d.state, d.nowMs, d.deniedUntilMs ?? null, id, d.seenAfterMs, d.nowMs),
    )
    return row === undefined ? undefined : fromRow(row)
  }

  async setEntry(id: string, entryId: string): Promise<void> {
    guard('record an approval', () => this.#setEntry.run(entryId, id))
  }

  async reopen(id: string): Promise<void> {
    guard('take an approval back', () => this.#reopen.run(id))
  }

  async withdraw(
    id: string,
    w: { nowMs: number; deniedUntilMs: number },
  ): Promise<PendingRequest | undefined> {
    const row = guard('withdraw an approval', () => this.#withdraw.get(w.nowMs, w.deniedUntilMs, id))
    return row === undefined ? undefined : fromRow(row)
  }
}
