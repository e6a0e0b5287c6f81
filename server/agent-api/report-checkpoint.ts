import type { handleUnaryCall } from '@grpc/grpc-js'
import type { ReportCheckpointRequest__Output } from '../../common/gen/tessera/agent/v1/ReportCheckpointRequest.js'
import type { ReportCheckpointResponse } from '../../common/gen/tessera/agent/v1/ReportCheckpointResponse.js'
import type { CheckpointService } from '../audit-checkpoints/checkpoint-service.js'
import { type AgentApiDeps, unaryHandler } from './handler.js'

/**
 * ReportCheckpoint: a signed audit checkpoint (DESIGN §10) of the agent's own log, or of a workload's
 * the agent forwards. The origin must be the agent's ID or the SPIFFE ID of an entry the agent is
 * authorized for (its own children, or an alias's, as SyncAuthorized serves them).
 */
export function reportCheckpointHandler(
  deps: AgentApiDeps,
  checkpoints: CheckpointService,
): handleUnaryCall<ReportCheckpointRequest__Output, ReportCheckpointResponse> {
  return unaryHandler(deps, 'ReportCheckpoint', async (call) => {
    const agent = await deps.auth.authenticate(call, 'ReportCheckpoint')
    const { note, x5c } = call.request
    await checkpoints.report(
      { note, x5c },
      {
        id: agent.id,
        caller: agent.caller,
        mayReportFor: async (origin) => {
          if (origin.equals(agent.id)) return true
          const set = await deps.authorized.forAgent(agent.id)
          return set.entries.some((e) => e.spiffeId.equals(origin))
        },
      },
      'ReportCheckpoint',
    )
    return {}
  })
}
