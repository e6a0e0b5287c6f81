import type { TaskRequest } from '../../lib/core/task/task-request.js'

/** One task as the server keeps it: what renewals and sub-tasks are checked against. */
export interface ServerTask {
  readonly taskId: string
  readonly entryId: string
  readonly spiffeId: string
  /** The agent that asked for it: only it may renew or end it. */
  readonly agentId: string
  readonly request: TaskRequest
  readonly parentTaskId?: string
  /** For a sub-task: its parent's subject and id, as audit lines' `delegatedSubject`. */
  readonly delegatedSubject?: string
  /** Set when a human approved it: renewals keep `tctx.consent` human and who approved. */
  readonly approvedBy?: string
  /** The latest token's expiry (Unix ms, whole seconds). */
  readonly expiresAtMs: number
  readonly endedAtMs?: number
  readonly endReason?: string
  /** The end has reached the revocation service (or there is none). */
  readonly isRevoked?: boolean
}

/**
 * Where the server keeps its tasks (SQLite, so that they survive a restart). Every method may also
 * fail with ERR_DATASTORE_IO.
 */
export interface TaskStore {
  /**
   * Stores a new task. When `limit` tasks are kept already, those expired at `nowMs` are dropped
   * first, then the oldest.
   */
  create(task: ServerTask, options: { readonly limit: number; readonly nowMs: number }): Promise<void>
  fetch(taskId: string): Promise<ServerTask | undefined>
  /** A renewal's new expiry. */
  renew(taskId: string, expiresAtMs: number): Promise<void>
  /** Records the end unless the task has ended already; true when this call ended it. */
  end(taskId: string, end: { readonly endedAtMs: number; readonly endReason: string }): Promise<boolean>
  /** The end has reached the revocations. */
  markRevoked(taskId: string): Promise<void>
  /** The direct sub-tasks of `parentTaskId`. */
  listChildren(parentTaskId: string): Promise<ReadonlyArray<ServerTask>>
  /** Deletes the tasks whose `expiresAtMs <= beforeMs`; returns how many. */
  prune(beforeMs: number): Promise<number>
}
