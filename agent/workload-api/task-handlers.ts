import { hostname } from 'node:os'
import { Metadata, type ServerUnaryCall } from '@grpc/grpc-js'
import type { NewTaskTokenRequest } from '../../common/gen/tessera/agent/v1/NewTaskTokenRequest.js'
import { type ErrorCode, IdentityError } from '../../lib/core/errors.js'
import type { RegistrationEntry } from '../../lib/core/registration-entry.js'
import { checkTaskRequest, DEFAULT_TASK_TTL_MS, MAX_TASK_TTL_MS } from '../../lib/core/task/task-request.js'
import { MAX_TASK_ID_LENGTH } from '../../lib/core/task/task-token.js'
import type { BeginTaskRequest__Output } from '../../lib/gen/tessera/workload/v1/BeginTaskRequest.js'
import type { BeginTaskResponse } from '../../lib/gen/tessera/workload/v1/BeginTaskResponse.js'
import type { EndTaskRequest__Output } from '../../lib/gen/tessera/workload/v1/EndTaskRequest.js'
import type { ListTasksResponse } from '../../lib/gen/tessera/workload/v1/ListTasksResponse.js'
import { AWAITING_APPROVAL_KEY, errorCodeOf, statusFor } from '../../lib/grpc/status.js'
import { cgroupOf, parentExeOf, unixValue } from '../consent/pending-workloads.js'
import type { TaskCallWait, TaskTokenResult } from '../server-client/results.js'
import type { AgentTasks } from '../tasks/agent-tasks.js'
import { type ProcessWatch, watchProcess } from '../tasks/process-watch.js'
import { type AttestedCaller, noIdentityFor, verifyBeforeAnswer } from './caller.js'
import { type WorkloadApiDeps, workloadCaller } from './context.js'
import type { RefusalThrottle } from './refusal-throttle.js'

/** What the task service on the socket needs beyond the Workload API's deps. */
export interface TaskDeps {
  readonly tasks: AgentTasks
  readonly server: {
    newTaskToken(request: NewTaskTokenRequest, wait?: TaskCallWait): Promise<TaskTokenResult>
    endTask(taskId: string, reason: 'ended' | 'exited'): Promise<void>
  }
  /** BeginTask calls per uid and executable (ERR_THROTTLED past it). */
  readonly beginThrottle: RefusalThrottle
  /** Opens a watch on the process behind a connection; default a pidfd of its own. */
  readonly watch?: typeof watchProcess
}

/** The wait of a unary call on the socket: its deadline, cancellation and initial metadata. */
export function callWaitOf(call: ServerUnaryCall<unknown, unknown>): TaskCallWait {
  const cancelled = new AbortController()
  call.on('cancelled', () => cancelled.abort())
  const deadline = call.getDeadline()
  let isSent = false
  return {
    deadlineMs: deadline instanceof Date ? deadline.getTime() : deadline,
    signal: cancelled.signal,
    onAwaiting: (requestId) => {
      if (isSent) return
      isSent = true
      const md = new Metadata()
      md.set(AWAITING_APPROVAL_KEY, requestId)
      call.sendMetadata(md)
    },
  }
}

/** The longest request the agent passes on (the server checks again). */
const MAX_PARENT_TOKEN = 8192

/**
 * BeginTask: throttled per uid and executable; the caller must have an identity (the token's `sub`
 * is the chosen one); the request is checked here and again by the server, which mints the token; a
 * new task is watched through a pidfd of the calling process unless detached. A renewal (`task_id`)
 * needs a live task of one of the caller's SPIFFE IDs and keeps its id.
 * @throws ERR_THROTTLED, ERR_NO_IDENTITY, ERR_REQUEST_INVALID, ERR_REQUEST_TOO_LARGE, ERR_TTL_INVALID,
 *   ERR_TASK_NOT_FOUND, ERR_TASK_ENDED, and the server's refusals (ERR_TASK_SCOPE_WIDENED, …)
 */
export async function beginTask(
  deps: WorkloadApiDeps,
  t: TaskDeps,
  req: BeginTaskRequest__Output,
  caller: AttestedCaller,
  callWait?: TaskCallWait,
): Promise<BeginTaskResponse> {
  const facts = caller.facts
  const exe = caller.selectors.find((s) => s.type === 'unix' && s.value.startsWith('sha256:'))
  const exeSha256 = exe?.value.slice('sha256:'.length) ?? ''
  const wait = t.beginThrottle.take([
    `uid:${facts.uid}`,
    exeSha256 ? `exe:${exeSha256}` : `path:${facts.exe}`,
  ])
  if (wait !== undefined)
    throw new IdentityError('ERR_THROTTLED', `too many tasks begun by uid ${facts.uid}; retry in ${wait} ms`)
  const entries = deps.identities.entriesFor(caller.selectors)
  const ttlSeconds = req.ttl_seconds === 0 ? DEFAULT_TASK_TTL_MS / 1000 : req.ttl_seconds
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds * 1000 > MAX_TASK_TTL_MS)
    throw new IdentityError('ERR_TTL_INVALID', `a task lives 1 to ${MAX_TASK_TTL_MS / 1000} seconds`)
  if (req.parent_token.length > MAX_PARENT_TOKEN)
    throw new IdentityError('ERR_REQUEST_TOO_LARGE', 'the parent token is too large')
  const renewing = req.task_id === '' ? undefined : renewable(t, req.task_id, entries)
  const entry = renewing?.entry ?? chosenEntry(entries, req.spiffe_id, caller)
  const request = renewing?.task.request ?? checkTaskRequest({ ...req, ttlMs: ttlSeconds * 1000 })
  if (renewing === undefined) t.tasks.requireRoomFor(facts.uid)
  const watch = renewing || req.detached ? undefined : openWatch(t, caller)
  try {
    const issued = await passOn(() =>
      t.server.newTaskToken(
        {
          entry_id: entry.id,
          audiences: [...request.audiences],
          scopes: [...request.scopes],
          purpose: request.purpose,
          ttl_seconds: ttlSeconds,
          parent_token: renewing ? '' : req.parent_token,
          task_id: req.task_id,
          pid: facts.pid,
          exe_sha256: exeSha256,
          host: hostname(),
          uid: facts.uid,
          user_name: unixValue(caller.selectors, 'user:') ?? '',
          gid: facts.gid,
          exe_path: unixValue(caller.selectors, 'path:') ?? facts.exe,
          cgroup: cgroupOf(facts),
          parent_exe: renewing ? '' : parentExeOf(facts),
        },
        callWait,
      ),
    )
    verifyBeforeAnswer(facts)
    if (renewing) t.tasks.renewed(issued.taskId, issued.expiresAtMs)
    else {
      const parentTaskId = parentOf(issued.token)
      await t.tasks.add(
        {
          taskId: issued.taskId,
          spiffeId: issued.spiffeId,
          entryId: entry.id,
          request,
          ...(parentTaskId !== undefined && { parentTaskId }),
          pid: watch === undefined ? 0 : facts.pid,
          uid: facts.uid,
          begunAtMs: issued.issuedAtMs,
          expiresAtMs: issued.expiresAtMs,
        },
        watch,
      )
    }
    deps.audit.svidIssued({
      spiffeId: issued.spiffeId,
      kind: 'task',
      entryId: entry.id,
      audience: request.audiences,
      scopes: request.scopes,
      ttlMs: issued.expiresAtMs - issued.issuedAtMs,
      caller: workloadCaller(facts),
      correlationId: issued.taskId,
    })
    return {
      task_id: issued.taskId,
      token: issued.token,
      spiffe_id: issued.spiffeId,
      expires_at: issued.expiresAtMs / 1000,
    }
  } catch (err) {
    watch?.close()
    throw err
  }
}

/**
 * EndTask: ends a task of one of the caller's SPIFFE IDs, here and on the server.
 * @throws ERR_REQUEST_INVALID, ERR_TASK_NOT_FOUND, the server's errors
 */
export async function endTask(
  deps: WorkloadApiDeps,
  t: TaskDeps,
  req: EndTaskRequest__Output,
  caller: AttestedCaller,
): Promise<Record<string, never>> {
  if (req.task_id === '' || req.task_id.length > MAX_TASK_ID_LENGTH)
    throw new IdentityError('ERR_REQUEST_INVALID', `a task id is 1 to ${MAX_TASK_ID_LENGTH} characters`)
  const own = ownIds(deps, caller)
  const task = t.tasks.get(req.task_id)
  if (task === undefined || !own.has(task.spiffeId))
    throw new IdentityError('ERR_TASK_NOT_FOUND', 'no such task of the caller')
  await passOn(() => t.tasks.end(req.task_id, 'ended'))
  deps.audit.callAllowed({
    method: 'EndTask',
    resource: task.spiffeId,
    caller: workloadCaller(caller.facts),
    correlationId: task.taskId,
  })
  return {}
}

/** ListTasks: the tasks of the caller's SPIFFE IDs, live and recently ended. */
export async function listTasks(
  deps: WorkloadApiDeps,
  t: TaskDeps,
  caller: AttestedCaller,
): Promise<ListTasksResponse> {
  t.tasks.sweep()
  const tasks = t.tasks.listFor(ownIds(deps, caller)).map((task) => ({
    task_id: task.taskId,
    spiffe_id: task.spiffeId,
    scopes: [...task.request.scopes],
    audiences: [...task.request.audiences],
    purpose: task.request.purpose,
    pid: task.pid,
    parent_task_id: task.parentTaskId ?? '',
    begun_at: Math.floor(task.begunAtMs / 1000),
    expires_at: Math.floor(task.expiresAtMs / 1000),
    ended_at: task.endedAtMs === undefined ? 0 : Math.floor(task.endedAtMs / 1000),
    end_reason: task.endReason ?? '',
  }))
  verifyBeforeAnswer(caller.facts)
  return { tasks }
}

function ownIds(deps: WorkloadApiDeps, caller: AttestedCaller): Set<string> {
  return new Set(deps.identities.entriesFor(caller.selectors).map((e) => e.spiffeId.toString()))
}

function chosenEntry(
  entries: ReadonlyArray<RegistrationEntry>,
  spiffeId: string,
  caller: AttestedCaller,
): RegistrationEntry {
  const entry = spiffeId === '' ? entries[0] : entries.find((e) => e.spiffeId.toString() === spiffeId)
  if (entry === undefined) throw noIdentityFor(caller)
  return entry
}

function renewable(t: TaskDeps, taskId: string, entries: ReadonlyArray<RegistrationEntry>) {
  if (taskId.length > MAX_TASK_ID_LENGTH)
    throw new IdentityError('ERR_REQUEST_INVALID', `a task id is 1 to ${MAX_TASK_ID_LENGTH} characters`)
  const task = t.tasks.get(taskId)
  const entry = task && entries.find((e) => e.id === task.entryId)
  if (task === undefined || entry === undefined)
    throw new IdentityError('ERR_TASK_NOT_FOUND', 'no such task of the caller to renew')
  if (task.endedAtMs !== undefined)
    throw new IdentityError('ERR_TASK_ENDED', `task ${taskId} has ended (${task.endReason})`)
  return { task, entry }
}

function openWatch(t: TaskDeps, caller: AttestedCaller): ProcessWatch {
  try {
    return t.tasks.watchFor(caller.facts.pid, () => (t.watch ?? watchProcess)(caller.facts))
  } catch (err) {
    throw new IdentityError('ERR_ATTESTATION_FAILED', 'workload attestation failed: caller exited', {
      cause: err,
    })
  }
}

/** `tctx.parent` of a token this agent was just handed by its server. */
function parentOf(token: string): string | undefined {
  try {
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
      tctx?: { parent?: unknown }
    }
    return typeof claims.tctx?.parent === 'string' ? claims.tctx.parent : undefined
  } catch {
    return undefined
  }
}

/**
 * Runs a call to the server, turning its refusal into the same coded error for the workload; a
 * failure without a code means the server could not be reached.
 */
async function passOn<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (err) {
    if (err instanceof IdentityError) throw err
    const code = errorCodeOf(err)
    const details = (err as { details?: unknown }).details
    const message = typeof details === 'string' ? details : (err as Error).message
    if (code !== undefined && Object.hasOwn(statusFor, code))
      throw new IdentityError(code as ErrorCode, message)
    throw new IdentityError('ERR_WORKLOAD_API_UNAVAILABLE', `the server could not be reached: ${message}`, {
      cause: err,
    })
  }
}
