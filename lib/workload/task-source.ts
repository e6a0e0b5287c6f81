import { type Clock, systemClock } from '../core/clock.js'
import type { WorkloadEndpoint } from './endpoint.js'
import { type BeginTaskParams, type BegunTask, TaskClient } from './task-client.js'

/**
 * Options of {@link TaskSource.begin} beyond the task itself.
 * @example
 * await TaskSource.begin({ audiences: ['mcp'], scopes: ['repo:read'], purpose: 'triage', endpoint: 'unix:///tmp/api.sock' })
 */
export interface TaskSourceOptions extends BeginTaskParams {
  readonly endpoint?: string | WorkloadEndpoint
  /** A client to use (not closed with the source); default one of its own. */
  readonly client?: TaskClient
  /** Where the time comes from; default the system clock. */
  readonly clock?: Clock
  /** Told of a renewal that failed (it is retried every second until the token expires). */
  readonly onError?: (err: unknown) => void
}

/** A renewal is retried this often after a failure. */
const RETRY_MS = 1000

/**
 * A task's token, kept fresh: renewed (same task id) once two thirds of its lifetime have passed,
 * and the task ended on {@link TaskSource.close}. The task also ends when this process exits.
 * @example
 * const task = await beginTask({ audiences: ['https://mcp.example'], scopes: ['repo:write'], purpose: 'fix issue 12' })
 * await fetch(url, { headers: { 'Txn-Token': task.token } })
 * await task.close()
 */
export class TaskSource {
  readonly #client: TaskClient
  readonly #ownsClient: boolean
  readonly #options: TaskSourceOptions
  #task: BegunTask
  #timer: NodeJS.Timeout | undefined
  #isClosed = false

  private constructor(client: TaskClient, ownsClient: boolean, options: TaskSourceOptions, task: BegunTask) {
    this.#client = client
    this.#ownsClient = ownsClient
    this.#options = options
    this.#task = task
    this.#schedule(task)
  }

  /**
   * Begins a task and keeps its token fresh.
   * @throws see {@link TaskClient.beginTask}
   */
  static async begin(options: TaskSourceOptions): Promise<TaskSource> {
    const ownsClient = options.client === undefined
    const client =
      options.client ??
      TaskClient.connect(options.endpoint === undefined ? {} : { endpoint: options.endpoint })
    try {
      return new TaskSource(client, ownsClient, options, await client.beginTask(options))
    } catch (err) {
      if (ownsClient) client.close()
      throw err
    }
  }

  /** The task's id (`txn`); a renewal keeps it. */
  get taskId(): string {
    return this.#task.taskId
  }

  /** The current task token, to send in a `Txn-Token` header. */
  get token(): string {
    return this.#task.token
  }

  /** When the current token expires (ms since the epoch). */
  get expiresAtMs(): number {
    return this.#task.expiresAtMs
  }

  /** Ends the task (EndTask) and stops renewing; safe to call more than once. @throws WorkloadApiError */
  async close(): Promise<void> {
    if (this.#isClosed) return
    this.#isClosed = true
    clearTimeout(this.#timer)
    try {
      await this.#client.endTask(this.#task.taskId)
    } finally {
      if (this.#ownsClient) this.#client.close()
    }
  }

  #schedule(task: BegunTask): void {
    const nowMs = (this.#options.clock ?? systemClock).nowMs()
    const lifetimeMs = Math.max(0, task.expiresAtMs - nowMs)
    this.#arm(Math.max(RETRY_MS, Math.floor((lifetimeMs * 2) / 3)))
  }

  #arm(delayMs: number): void {
    if (this.#isClosed) return
    this.#timer = setTimeout(() => void this.#renew(), delayMs)
    this.#timer.unref()
  }

  async #renew(): Promise<void> {
    try {
      const task = await this.#client.beginTask(this.#options, this.#task.taskId)
      if (this.#isClosed) return
      this.#task = task
      this.#schedule(task)
    } catch (err) {
      this.#options.onError?.(err)
      const nowMs = (this.#options.clock ?? systemClock).nowMs()
      if (nowMs + RETRY_MS < this.#task.expiresAtMs) this.#arm(RETRY_MS)
    }
  }
}

/**
 * Begins a task through the agent and returns its {@link TaskSource}.
 * @example
 * const task = await beginTask({ audiences: ['https://mcp.example'], scopes: ['repo:write'], purpose: 'fix issue 12', ttlMs: 600_000 })
 * @throws see {@link TaskClient.beginTask}
 */
export function beginTask(options: TaskSourceOptions): Promise<TaskSource> {
  return TaskSource.begin(options)
}
