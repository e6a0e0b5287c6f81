import { credentials } from '@grpc/grpc-js'
import { IdentityError } from '../core/errors.js'
import type { BeginTaskResponse__Output } from '../gen/tessera/workload/v1/BeginTaskResponse.js'
import type { ListTasksResponse__Output } from '../gen/tessera/workload/v1/ListTasksResponse.js'
import type { TasksClient } from '../gen/tessera/workload/v1/Tasks.js'
import { AWAITING_APPROVAL_KEY } from '../grpc/status.js'
import { type CallContext, type Cancellable, unaryCall } from './calls.js'
import { loadWorkloadEndpointFromEnv, parseWorkloadEndpoint, type WorkloadEndpoint } from './endpoint.js'
import { tasksApi } from './workload-proto.js'

/**
 * What a task is begun for (DESIGN §11; docs/tasks.md).
 * @example
 * const params: BeginTaskParams = { audiences: ['https://mcp.example'], scopes: ['repo:write'], purpose: 'fix issue 12', ttlMs: 600_000 }
 */
export interface BeginTaskParams {
  /** Who the token is for (its `aud`). */
  readonly audiences: ReadonlyArray<string>
  /** OAuth scope tokens (its `scope`). */
  readonly scopes: ReadonlyArray<string>
  /** Why, for people reading the audit (its `tctx.purpose`). */
  readonly purpose: string
  /** Wanted lifetime in whole seconds' ms; default 10 minutes, at most 15 (and the entry's JWT TTL). */
  readonly ttlMs?: number
  /** A sub-task: the parent's task token; the sub-task may only narrow it. */
  readonly parentToken?: string
  /** Which of the caller's SPIFFE IDs; default its first. */
  readonly spiffeId?: string
  /** Keep the task when this process exits (until `endTask` or its expiry). */
  readonly detached?: boolean
  /**
   * Called when a scope needs a human and the call waits for `tessera approval approve|deny`, with
   * the pending request's id. The wait is bounded by the server's timeout and this client's.
   */
  readonly onAwaitingApproval?: (requestId: string) => void
}

/**
 * A task token as the agent handed it.
 * @example
 * const { taskId, token, expiresAtMs } = await client.beginTask(params)
 */
export interface BegunTask {
  readonly taskId: string
  readonly token: string
  readonly spiffeId: string
  readonly expiresAtMs: number
}

/**
 * One task as `listTasks` shows it.
 * @example
 * const live = (await client.listTasks()).filter((t) => t.endedAtMs === undefined)
 */
export interface TaskInfo {
  readonly taskId: string
  readonly spiffeId: string
  readonly scopes: ReadonlyArray<string>
  readonly audiences: ReadonlyArray<string>
  readonly purpose: string
  /** The process that began it; 0 when detached. */
  readonly pid: number
  readonly parentTaskId?: string
  readonly begunAtMs: number
  readonly expiresAtMs: number
  readonly endedAtMs?: number
  /** `ended`, `exited` or `expired`. */
  readonly endReason?: string
}

/**
 * A client of Tessera's task service on the agent's Workload API socket (`tessera.workload.v1.Tasks`).
 * A task ends when the process that began it exits, not when this client closes.
 * @example
 * const client = TaskClient.connect({ endpoint: 'unix:///run/tessera/api.sock' })
 * const task = await client.beginTask({ audiences: ['mcp'], scopes: ['repo:read'], purpose: 'triage' })
 * await client.endTask(task.taskId)
 * client.close()
 */
export class TaskClient {
  readonly #grpc: TasksClient
  readonly #open = new Set<Cancellable>()
  readonly #timeoutMs: number

  private constructor(endpoint: WorkloadEndpoint, timeoutMs: number) {
    const Client = tasksApi().tessera.workload.v1.Tasks
    this.#grpc = new Client(endpoint.grpcTarget, credentials.createInsecure())
    this.#timeoutMs = timeoutMs
  }

  /**
   * A client of the agent at `endpoint` (else `SPIFFE_ENDPOINT_SOCKET`).
   * @throws ERR_ENDPOINT_INVALID
   */
  static connect(options: { endpoint?: string | WorkloadEndpoint; timeoutMs?: number } = {}): TaskClient {
    const { endpoint } = options
    const parsed =
      endpoint === undefined
        ? loadWorkloadEndpointFromEnv()
        : typeof endpoint === 'string'
          ? parseWorkloadEndpoint(endpoint)
          : endpoint
    return new TaskClient(parsed, options.timeoutMs ?? 30_000)
  }

  /**
   * Begins a task (or, with `renewTaskId`, renews a live one: same id, a fresh token).
   * @throws ERR_TTL_INVALID (not whole seconds), WorkloadApiError (its code says why: ERR_THROTTLED,
   *   ERR_TASK_SCOPE_WIDENED, ERR_REQUEST_INVALID, ERR_NO_IDENTITY, ERR_TASK_DENIED and
   *   ERR_APPROVAL_TIMEOUT for a scope that needs a human, …)
   */
  async beginTask(params: BeginTaskParams, renewTaskId = ''): Promise<BegunTask> {
    const ttlMs = params.ttlMs ?? 0
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 0 || ttlMs % 1000 !== 0)
      throw new IdentityError('ERR_TTL_INVALID', 'a task TTL is a whole number of seconds')
    const request = {
      audiences: [...params.audiences],
      scopes: [...params.scopes],
      purpose: params.purpose,
      ttl_seconds: ttlMs / 1000,
      parent_token: params.parentToken ?? '',
      task_id: renewTaskId,
      spiffe_id: params.spiffeId ?? '',
      detached: params.detached === true,
    }
    const onAwaiting = params.onAwaitingApproval
    const res = await unaryCall<BeginTaskResponse__Output>(this.#call('BeginTask'), (md, o, cb) => {
      const call = this.#grpc.BeginTask(request, md, o, cb)
      if (onAwaiting !== undefined)
        call.on('metadata', (received) => {
          const requestId = received.get(AWAITING_APPROVAL_KEY)[0]
          if (typeof requestId === 'string' && requestId !== '') onAwaiting(requestId)
        })
      return call
    })
    return {
      taskId: res.task_id,
      token: res.token,
      spiffeId: res.spiffe_id,
      expiresAtMs: res.expires_at * 1000,
    }
  }

  /** Ends a task of one of the caller's SPIFFE IDs. @throws WorkloadApiError (ERR_TASK_NOT_FOUND, …) */
  async endTask(taskId: string): Promise<void> {
    await unaryCall<unknown>(this.#call('EndTask'), (md, o, cb) =>
      this.#grpc.EndTask({ task_id: taskId }, md, o, cb),
    )
  }

  /** The tasks of the caller's SPIFFE IDs, live and recently ended. @throws WorkloadApiError */
  async listTasks(): Promise<TaskInfo[]> {
    const res = await unaryCall<ListTasksResponse__Output>(this.#call('ListTasks'), (md, o, cb) =>
      this.#grpc.ListTasks({}, md, o, cb),
    )
    return res.tasks.map((t) => ({
      taskId: t.task_id,
      spiffeId: t.spiffe_id,
      scopes: [...t.scopes],
      audiences: [...t.audiences],
      purpose: t.purpose,
      pid: t.pid,
      ...(t.parent_task_id !== '' && { parentTaskId: t.parent_task_id }),
      begunAtMs: t.begun_at * 1000,
      expiresAtMs: t.expires_at * 1000,
      ...(t.ended_at !== 0 && { endedAtMs: t.ended_at * 1000 }),
      ...(t.end_reason !== '' && { endReason: t.end_reason }),
    }))
  }

  /** Cancels open calls and closes the channel (the tasks go on). */
  close(): void {
    for (const call of this.#open) call.cancel()
    this.#grpc.close()
  }

  #call(method: string): CallContext {
    const deadline = Number.isFinite(this.#timeoutMs) ? { deadline: Date.now() + this.#timeoutMs } : {}
    return { method: `Tasks/${method}`, options: deadline, open: this.#open }
  }
}
