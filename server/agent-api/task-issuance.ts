import type { handleUnaryCall } from '@grpc/grpc-js'
import type { AgentEndTaskRequest__Output } from '../../common/gen/tessera/agent/v1/AgentEndTaskRequest.js'
import type { AgentEndTaskResponse } from '../../common/gen/tessera/agent/v1/AgentEndTaskResponse.js'
import type { NewTaskTokenRequest__Output } from '../../common/gen/tessera/agent/v1/NewTaskTokenRequest.js'
import type { NewTaskTokenResponse } from '../../common/gen/tessera/agent/v1/NewTaskTokenResponse.js'
import { IdentityError } from '../../lib/core/errors.js'
import type { TaskService } from '../tasks/task-service.js'
import { type AgentApiDeps, unaryHandler } from './handler.js'
import { authorizedEntry } from './issuance.js'

/** Longest host name and executable hash accepted in `rctx`. */
const MAX_RCTX_TEXT = 256

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
