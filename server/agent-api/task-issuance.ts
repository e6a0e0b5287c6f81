import { type handleUnaryCall, Metadata } from '@grpc/grpc-js'
import type { AgentEndTaskRequest__Output } from '../../common/gen/tessera/agent/v1/AgentEndTaskRequest.js'
import type { AgentEndTaskResponse } from '../../common/gen/tessera/agent/v1/AgentEndTaskResponse.js'
import type { NewTaskTokenRequest__Output } from '../../common/gen/tessera/agent/v1/NewTaskTokenRequest.js'
import type { NewTaskTokenResponse } from '../../common/gen/tessera/agent/v1/NewTaskTokenResponse.js'
import { IdentityError } from '../../lib/core/errors.js'
import { AWAITING_APPROVAL_KEY } from '../../lib/grpc/status.js'
import type { TaskService } from '../tasks/task-service.js'
import { type AgentApiDeps, unaryHandler } from './handler.js'
import { authorizedEntry } from './issuance.js'

/** Longest host name and executable hash accepted in `rctx`, and other attested text. */
const MAX_RCTX_TEXT = 256
const MAX_FACT_TEXT = 4096

/**
 * NewTaskToken: a task token for an entry this agent is authorized for (the same check as
 * NewJwtSvid), minted, remembered and audited by the task service.
 */
export function newTaskTokenHandler(
  deps: AgentApiDeps,
  tasks: TaskService,
): handleUnaryCall<NewTaskTokenRequest__Output, NewTaskTokenResponse> {
  return unaryHandler(deps, 'NewTaskToken', async (call) => {
    const agent = await deps.auth.authenticate(call, 'NewTaskToken')
    const req = call.request
    if (req.host.length > MAX_RCTX_TEXT || req.exe_sha256.length > MAX_RCTX_TEXT)
      throw new IdentityError('ERR_REQUEST_TOO_LARGE', 'the request context is too large')
    const texts = [req.user_name, req.exe_path, req.cgroup, req.parent_exe]
    if (texts.some((t) => t.length > MAX_FACT_TEXT))
      throw new IdentityError('ERR_REQUEST_TOO_LARGE', 'the attested facts are too large')
    const cancelled = new AbortController()
    call.on('cancelled', () => cancelled.abort())
    const deadline = call.getDeadline()
    const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline
    const set = await deps.authorized.forAgent(agent.id)
    const entry = await authorizedEntry(deps, { agent, set, entryId: req.entry_id, kind: 'task' })
    const ttlSeconds = Number(req.ttl_seconds)
    const issued = await tasks.issue({
      agent,
      entry,
      request: {
        audiences: req.audiences,
        scopes: req.scopes,
        purpose: req.purpose,
        ttlMs: Number.isSafeInteger(ttlSeconds) ? ttlSeconds * 1000 : Number.NaN,
      },
      parentToken: req.parent_token,
      taskId: req.task_id,
      requester: { pid: req.pid, exeSha256: req.exe_sha256, host: req.host },
      facts: {
        uid: req.uid,
        userName: req.user_name,
        gid: req.gid,
        exePath: req.exe_path,
        sha256: req.exe_sha256,
        cgroup: req.cgroup,
        parentExe: req.parent_exe,
      },
      deadlineMs,
      signal: cancelled.signal,
      onWaiting: (requestId) => {
        const md = new Metadata()
        md.set(AWAITING_APPROVAL_KEY, requestId)
        call.sendMetadata(md)
      },
    })
    return {
      token: issued.token,
      task_id: issued.taskId,
      spiffe_id: entry.spiffeId.toString(),
      expires_at: issued.expiresAtMs / 1000,
      issued_at: issued.issuedAtMs / 1000,
    }
  })
}

/** EndTask: the agent that asked for a task records its end (EndTask on its socket, or its process exited). */
export function endTaskHandler(
  deps: AgentApiDeps,
  tasks: TaskService,
): handleUnaryCall<AgentEndTaskRequest__Output, AgentEndTaskResponse> {
  return unaryHandler(deps, 'EndTask', async (call) => {
    const agent = await deps.auth.authenticate(call, 'EndTask')
    await tasks.endForAgent(agent, call.request.task_id, call.request.reason)
    return {}
  })
}
