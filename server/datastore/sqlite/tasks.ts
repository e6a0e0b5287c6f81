import type Database from 'better-sqlite3'
import type { ServerTask, TaskStore } from '../../tasks/server-task.js'
import { guard, readRow } from './guard.js'

interface TaskRow {
  readonly task_id: string
  readonly entry_id: string
  readonly spiffe_id: string
  readonly agent_id: string
  readonly request_json: string
  readonly parent_task_id: string | null
  readonly delegated_subject: string | null
  readonly approved_by: string | null
  readonly expires_at_ms: number
  readonly ended_at_ms: number | null
  readonly end_reason: string | null
  readonly is_revoked: number
}

function fromRow(row: TaskRow): ServerTask {
  return readRow('task', () => {
    const r = JSON.parse(row.request_json) as Record<string, unknown>
    const strings = (v: unknown) => {
      if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw new Error('not a list of strings')
      return Object.freeze([...(v as string[])])
    }
    if (typeof r.purpose !== 'string' || typeof r.ttlMs !== 'number') throw new Error('a malformed request')
    return Object.freeze({
      taskId: row.task_id,
      entryId: row.entry_id,
      spiffeId: row.spiffe_id,
      agentId: row.agent_id,
      request: Object.freeze({
        audiences: strings(r.audiences),
        scopes: strings(r.scopes),
        purpose: r.purpose,
        ttlMs: r.ttlMs,
      }),
      ...(row.parent_task_id !== null && { parentTaskId: row.parent_task_id }),
      ...(row.delegated_subject !== null && { delegatedSubject: row.delegated_subject }),
      ...(row.approved_by !== null && { approvedBy: row.approved_by }),
      expiresAtMs: row.expires_at_ms,
      ...(row.ended_at_ms !== null && { endedAtMs: row.ended_at_ms }),
      ...(row.end_reason !== null && { endReason: row.end_reason }),
      isRevoked: row.is_revoked === 1,
    })
  })
}

/** The {@link TaskStore} on SQLite. */
export class SqliteTaskStore implements TaskStore {
  readonly #create: (task: ServerTask, limit: number, nowMs: number) => void
  readonly #fetch: Database.Statement<[string], TaskRow>
  readonly #renew: Database.Statement<[number, string]>
  readonly #end: Database.Statement<[number, string, string]>
  readonly #markRevoked: Database.Statement<[string]>
  readonly #children: Database.Statement<[string], TaskRow>
  readonly #prune: Database.Statement<[number]>

  constructor(db: Database.Database) {
    const count = db.prepare('SELECT count(*) FROM tasks').pluck()
    const dropExpired = db.prepare<[number]>('DELETE FROM tasks WHERE expires_at_ms <= ?')
    const dropOldest = db.prepare<[number]>(
      'DELETE FROM tasks WHERE rowid IN (SELECT rowid FROM tasks ORDER BY rowid LIMIT ?)',
    )
    const insert = db.prepare(
      `INSERT INTO tasks (task_id, entry_id, spiffe_id, agent_id, request_json, parent_task_id,
         delegated_subject, approved_by, expires_at_ms, ended_at_ms, end_reason, is_revoked)
       VALUES (@taskId, @entryId, @spiffeId, @agentId, @requestJson, @parentTaskId,
         @delegatedSubject, @approvedBy, @expiresAtMs, NULL, NULL, 0)`,
    )
    this.#create = db.transaction((task: ServerTask, limit: number, nowMs: number) => {
      if ((count.get() as number) >= limit) dropExpired.run(nowMs)
      const over = (count.get() as number) - limit + 1
      if (over > 0) dropOldest.run(over)
      const { audiences, scopes, purpose, ttlMs } = task.request
      insert.run({
        taskId: task.taskId,
        entryId: task.entryId,
        spiffeId: task.spiffeId,
        agentId: task.agentId,
        requestJson: JSON.stringify({ audiences, scopes, purpose, ttlMs }),
        parentTaskId: task.parentTaskId ?? null,
        delegatedSubject: task.delegatedSubject ?? null,
        approvedBy: task.approvedBy ?? null,
        expiresAtMs: task.expiresAtMs,
      })
    }).immediate
    this.#fetch = db.prepare('SELECT * FROM tasks WHERE task_id = ?')
    this.#renew = db.prepare('UPDATE tasks SET expires_at_ms = ? WHERE task_id = ?')
    this.#end = db.prepare(
      'UPDATE tasks SET ended_at_ms = ?, end_reason = ? WHERE task_id = ? AND ended_at_ms IS NULL',
    )
    this.#markRevoked = db.prepare('UPDATE tasks SET is_revoked = 1 WHERE task_id = ?')
    this.#children = db.prepare('SELECT * FROM tasks WHERE parent_task_id = ? ORDER BY rowid')
    this.#prune = db.prepare('DELETE FROM tasks WHERE expires_at_ms <= ?')
  }

  async create(task: ServerTask, options: { limit: number; nowMs: number }): Promise<void> {
    guard('store a task', () => this.#create(task, options.limit, options.nowMs))
  }

  async fetch(taskId: string): Promise<ServerTask | undefined> {
    const row = guard('read a task', () => this.#fetch.get(taskId))
    return row === undefined ? undefined : fromRow(row)
  }

  async renew(taskId: string, expiresAtMs: number): Promise<void> {
    guard('renew a task', () => this.#renew.run(expiresAtMs, taskId))
  }

  async end(taskId: string, end: { endedAtMs: number; endReason: string }): Promise<boolean> {
    return guard('end a task', () => this.#end.run(end.endedAtMs, end.endReason, taskId).changes > 0)
  }

  async markRevoked(taskId: string): Promise<void> {
    guard('mark a task revoked', () => this.#markRevoked.run(taskId))
  }

  async listChildren(parentTaskId: string): Promise<ReadonlyArray<ServerTask>> {
    return guard('list sub-tasks', () => this.#children.all(parentTaskId)).map(fromRow)
  }

  async prune(beforeMs: number): Promise<number> {
    return guard('prune tasks', () => this.#prune.run(beforeMs).changes)
  }
}
