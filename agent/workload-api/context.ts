import type { Logger } from 'pino'
import type { AuditCaller, AuditLog } from '../../common/log/audit-log.js'
import type { ProcessFacts } from '../../common/peercred/process-facts.js'
import type { Clock } from '../../lib/core/clock.js'
import type { AttestedCaller, SelectorAttestor } from './caller.js'
import type { CheckpointRelay } from './checkpoint-relay.js'
import type { WorkloadIdentities } from './ports.js'
import type { RefusalThrottle } from './refusal-throttle.js'
import type { UidStreamLimits } from './stream-limits.js'
import type { TaskDeps } from './task-handlers.js'
import type { OpenStreams } from './update-stream.js'

/** What the Workload API handlers need (one deps object, STYLE §1). */
export interface WorkloadApiDeps {
  readonly identities: WorkloadIdentities
  readonly attestor: SelectorAttestor
  /** The attested facts of the connection a call arrived on. */
  readonly factsOf: (call: { getPeer(): string }) => ProcessFacts | undefined
  readonly clock: Clock
  readonly audit: AuditLog
  readonly log: Logger
  /** SPIRE's `allow_unauthenticated_verifiers`: callers with no identity may fetch the own bundle. */
  readonly allowUnauthenticatedVerifiers: boolean
  /** How long a first stream response may wait for SVIDs still being signed. */
  readonly firstResponseWaitMs: number
  /** The open streams, ended with UNAVAILABLE at shutdown. */
  readonly openStreams: OpenStreams
  /** Refusals per uid and executable hash (ERR_THROTTLED past the limit). */
  readonly throttle: RefusalThrottle
  /** Open streams per uid (ERR_CONNECTION_LIMIT past the limit). */
  readonly streams: UidStreamLimits
  /** Where callers that matched no entry are noted, to become pending requests (DESIGN §10). */
  readonly pending?: RefusedCallers
  /** Where workloads' audit checkpoints are forwarded (`tessera.agent.v1.AuditCheckpoints`); absent: not served. */
  readonly checkpoints?: CheckpointRelay
  /** The agent's tasks and its server (`tessera.workload.v1.Tasks`); absent: not served. */
  readonly tasks?: Omit<TaskDeps, 'beginThrottle'>
  /** Set for a stream's body: audits a refusal of its caller and gives the status to end with. */
  readonly refuse?: (err: unknown) => unknown
}

/** Notes a caller that matched no entry (the agent's pending workloads implement it). */
export interface RefusedCallers {
  /** True when the caller is now a pending request (it has a binary an approval could pin). */
  noteRefused(caller: AttestedCaller): boolean
}

/** The audit form of a workload caller. */
export function workloadCaller(facts: ProcessFacts | undefined): Extract<AuditCaller, { kind: 'workload' }> {
  return {
    kind: 'workload',
    pid: facts?.pid ?? 0,
    uid: facts?.uid ?? -1,
    gid: facts?.gid ?? -1,
    exe: facts?.exe,
  }
}
