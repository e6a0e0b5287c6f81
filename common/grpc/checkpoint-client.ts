import { credentials } from '@grpc/grpc-js'
import { securityMetadata } from '../../lib/workload/calls.js'
import type { WorkloadEndpoint } from '../../lib/workload/endpoint.js'
import type { SignedCheckpoint } from '../log/audit-chain-writer.js'
import { agentApi } from './protos.js'

/** How long one report may take. */
const REPORT_TIMEOUT_MS = 10_000

/** A client of the agent's `tessera.agent.v1.AuditCheckpoints` service on its Workload API socket. */
export interface CheckpointClient {
  /** @throws ServiceError when the agent (or the server behind it) refuses it or cannot be reached */
  report(checkpoint: SignedCheckpoint): Promise<void>
  close(): void
}

/**
 * Connects (lazily) to the agent at the Workload API `endpoint`, for a workload that writes a chained
 * audit log (the gateway) to send its checkpoints to the server through its agent (DESIGN §10).
 */
export function connectCheckpointClient(endpoint: WorkloadEndpoint): CheckpointClient {
  const AuditCheckpoints = agentApi().tessera.agent.v1.AuditCheckpoints
  const client = new AuditCheckpoints(endpoint.grpcTarget, credentials.createInsecure())
  return {
    report: ({ note, x5c }) =>
      new Promise((resolve, reject) => {
        client.Report(
          { note, x5c: [...x5c] },
          securityMetadata(),
          { deadline: Date.now() + REPORT_TIMEOUT_MS },
          (err) => (err ? reject(err) : resolve()),
        )
      }),
    close: () => client.close(),
  }
}
