import type { ReportCheckpointRequest__Output } from '../../common/gen/tessera/agent/v1/ReportCheckpointRequest.js'
import type { ReportCheckpointResponse } from '../../common/gen/tessera/agent/v1/ReportCheckpointResponse.js'
import { verifyReportedCheckpoint } from '../../lib/audit/reported-checkpoint.js'
import { type ErrorCode, IdentityError } from '../../lib/core/errors.js'
import { errorCodeOf } from '../../lib/grpc/status.js'
import { type AttestedCaller, verifyBeforeAnswer } from './caller.js'
import type { WorkloadApiDeps } from './context.js'

/** Where the agent forwards a workload's checkpoint (the server client). */
export interface CheckpointRelay {
  forward(checkpoint: { note: string; x5c: ReadonlyArray<Uint8Array> }): Promise<void>
}

/** The server's refusals a workload is told as they are; anything else is "not kept now, try again". */
const PASSED_ON: ReadonlySet<string> = new Set<ErrorCode>([
  'ERR_AUDIT_CHECKPOINT_REFUSED',
  'ERR_AUDIT_CHECKPOINT_CONFLICT',
  'ERR_REQUEST_INVALID',
  'ERR_REQUEST_TOO_LARGE',
])

/**
 * `tessera.agent.v1.AuditCheckpoints/Report` on the Workload API socket (DESIGN §10): a workload that
 * writes a chained audit log (the gateway) sends its checkpoints through its agent. The caller is
 * attested like any Workload API caller; the note's origin must be an identity it is entitled to now,
 * signed by an SVID of that ID that chains to the agent's bundle; then the agent forwards it, and the
 * server checks again that this agent may speak for that ID.
 * @throws ERR_CA_NOT_READY, ERR_REQUEST_INVALID, ERR_REQUEST_TOO_LARGE, ERR_AUDIT_CHECKPOINT_REFUSED,
 *   ERR_AUDIT_CHECKPOINT_CONFLICT, ERR_AUDIT_UNAVAILABLE (the server could not be reached)
 */
export async function relayCheckpoint(
  deps: WorkloadApiDeps,
  relay: CheckpointRelay,
  req: ReportCheckpointRequest__Output,
  caller: AttestedCaller,
): Promise<ReportCheckpointResponse> {
  const bundles = deps.identities.bundles()
  if (bundles === undefined) throw new IdentityError('ERR_CA_NOT_READY', 'the agent has no bundle yet')
  const own = bundles.own
  const source = {
    getX509BundleForTrustDomain: (td: typeof own.trustDomain) =>
      td.equals(own.trustDomain) ? own.toX509Bundle() : undefined,
  }
  const checkpoint = verifyReportedCheckpoint(req, source, deps.clock.nowMs())
  const entitled = deps.identities
    .entriesFor(caller.selectors)
    .some((e) => e.spiffeId.equals(checkpoint.signer))
  if (!entitled)
    throw new IdentityError(
      'ERR_AUDIT_CHECKPOINT_REFUSED',
      `the caller is not entitled to ${checkpoint.origin}: it may not report that log's checkpoints`,
    )
  verifyBeforeAnswer(caller.facts)
  try {
    await relay.forward(req)
  } catch (err) {
    const code = err instanceof IdentityError ? err.code : errorCodeOf(err)
    const details = (err as { details?: unknown }).details
    const message = typeof details === 'string' ? details : (err as Error).message
    if (code !== undefined && PASSED_ON.has(code))
      throw new IdentityError(code as ErrorCode, `the server refused the checkpoint: ${message}`)
    throw new IdentityError('ERR_AUDIT_UNAVAILABLE', `the server did not keep the checkpoint: ${message}`, {
      cause: err,
    })
  }
  return {}
}
