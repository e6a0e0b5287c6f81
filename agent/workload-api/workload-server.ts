import type { Logger } from 'pino'
import type { ReportCheckpointRequest__Output } from '../../common/gen/tessera/agent/v1/ReportCheckpointRequest.js'
import { defaultUidCap, type UidConnectionPolicy } from '../../common/grpc/connection-limits.js'
import { connectionBudget, openFileLimit } from '../../common/grpc/fd-budget.js'
import { agentApi, delegatedApi, healthApi, workloadApi } from '../../common/grpc/protos.js'
import { UdsServer } from '../../common/grpc/uds-server.js'
import type { AuditLog } from '../../common/log/audit-log.js'
import { SummarisingAuditLog } from '../../common/log/audit-summary.js'
import { bindingOf } from '../../common/peercred/peer-binding.js'
import { fdOf } from '../../common/peercred/peercred.js'
import {
  type ProcessFacts,
  type ProcessFactsOptions,
  readProcessFacts,
} from '../../common/peercred/process-facts.js'
import { IdentityError } from '../../lib/core/errors.js'
import type { SpiffeWorkloadAPIHandlers } from '../../lib/gen/SpiffeWorkloadAPI.js'
import type { BeginTaskRequest__Output } from '../../lib/gen/tessera/workload/v1/BeginTaskRequest.js'
import type { EndTaskRequest__Output } from '../../lib/gen/tessera/workload/v1/EndTaskRequest.js'
import { revocationsApi, tasksApi } from '../../lib/workload/workload-proto.js'
import { bindingHooks, bindOrClose, closeFacts } from './binding.js'
import { relayCheckpoint } from './checkpoint-relay.js'
import type { WorkloadApiDeps } from './context.js'
import { delegatedIdentityHandlers } from './delegated-handlers.js'
import { healthHandlers } from './health-service.js'
import { RefusalThrottle, type RefusalThrottleOptions } from './refusal-throttle.js'
import { revocationHandlers } from './revocation-service.js'
import { UidStreamLimits } from './stream-limits.js'
import { beginTask, callWaitOf, endTask, listTasks } from './task-handlers.js'
import type { OpenStreams } from './update-stream.js'
import { unary, workloadApiHandlers } from './workload-service.js'

/**
 * Socket permissions: like SPIRE's agent socket, the Workload API socket is world-connectable (0777
 * in a 0755 directory). Access control is not the file mode but attestation: every caller's process
 * is identified from kernel facts and gets only what registration entries grant it.
 */
export const WORKLOAD_SOCKET_MODE = 0o777
export const WORKLOAD_SOCKET_DIR_MODE = 0o755

const BINDING_OFF_WARNING =
  'BINDING CHECKS OFF (bench only): a Workload API connection is not bound to the process that made it; ' +
  'a process that execs, is traced, preloads code or hands its socket on keeps the identity. Never run so.'

/** Options of {@link startWorkloadApi}. */
export interface WorkloadServerOptions {
  readonly socketPath: string
  readonly log: Logger
  readonly procFacts?: ProcessFactsOptions
  /** Most concurrent connections (each may carry many streams); default {@link MAX_CONNECTIONS}. */
  readonly maxConnections?: number
  /** Most connections one uid may hold; default 1/16 of `maxConnections`. */
  readonly maxConnectionsPerUid?: number
  /** A connection with no call in flight and no stream open this long is closed; 0 or absent: never. */
  readonly idleTimeoutMs?: number
  /** Repeated refusals of one kind within this window are audited as one line; default 10 s. */
  readonly auditSummaryWindowMs?: number
  /** Most streams one uid may have open at once; default {@link MAX_STREAMS_PER_UID}. */
  readonly maxStreamsPerUid?: number
  /**
   * The DESIGN §6.1 binding of each connection to its process (relay, checks before every answer,
   * binary pins withheld from preloaded code); default true. Off only for the bench's comparison.
   */
  readonly bindingChecks?: boolean
  /** BeginTask calls per uid and executable: burst and refill; default 20, then 5 a second (the agent's `beginTaskPerSecond`). */
  readonly beginTaskThrottle?: RefusalThrottleOptions
}

/**
 * Connections the agent holds at once, from every uid, at most; fewer when the descriptor limit
 * cannot hold that many ({@link FDS_PER_BOUND_CONNECTION} each). One uid may hold
 * `maxConnectionsPerUid` of them, and never more than half.
 */
export const MAX_CONNECTIONS = 8192
/**
 * Descriptors one bound connection holds: the socket, the relay's copy of it and its socketpair,
 * the peer's pidfd, and its `/proc` status and environ files (DESIGN §6.1); unbound, the first two.
 */
export const FDS_PER_BOUND_CONNECTION = 7
/** Open streams one uid may hold by default (a process needs a handful; the bench holds 1000). */
export const MAX_STREAMS_PER_UID = 2048
/** Concurrent calls and streams on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). */
export const MAX_STREAMS_PER_CONNECTION = 100

/** A running Workload API endpoint. */
export interface WorkloadServer {
  close(): Promise<void>
}

/**
 * Serves the SPIFFE Workload API on a Unix socket. Each connection is attested once at accept
 * (SO_PEERCRED + SO_PEERPIDFD + /proc, race-free); the pidfd stays open for the connection's life and
 * is checked again before every answer.
 */
export async function startWorkloadApi(
  options: WorkloadServerOptions,
  given: Omit<WorkloadApiDeps, 'factsOf' | 'openStreams' | 'throttle' | 'streams'>,
): Promise<WorkloadServer> {
  const openStreams: OpenStreams = new Set()
  const audit = new SummarisingAuditLog(given.audit, {
    clock: given.clock,
    ...(options.auditSummaryWindowMs === undefined ? {} : { windowMs: options.auditSummaryWindowMs }),
  })
  const streams = new UidStreamLimits(options.maxStreamsPerUid ?? MAX_STREAMS_PER_UID)
  const deps = { ...given, audit, throttle: new RefusalThrottle(given.clock), streams }
  const checks = options.bindingChecks ?? true
  if (!checks) options.log.error({}, BINDING_OFF_WARNING)
  const maxConnections =
    options.maxConnections ??
    connectionBudget(checks ? FDS_PER_BOUND_CONNECTION : 2, MAX_CONNECTIONS, openFileLimit())
  const perUid = Math.min(
    options.maxConnectionsPerUid ?? defaultUidCap(maxConnections),
    Math.max(1, Math.floor(maxConnections / 2)),
  )
  options.log.info({ maxConnections, maxConnectionsPerUid: perUid }, 'Workload API connection limits.')
  const server: UdsServer<ProcessFacts> = new UdsServer<ProcessFacts>({
    path: options.socketPath,
    dirMode: WORKLOAD_SOCKET_DIR_MODE,
    socketMode: WORKLOAD_SOCKET_MODE,
    admit: async (socket, creds) => {
      try {
        const facts = await readProcessFacts(fdOf(socket), options.procFacts)
        if (checks) await bindOrClose(socket, facts, deps).catch(closeFacts(facts))
        return facts
      } catch (err) {
        // The connection is refused (closed): audit who it claimed to be at connect time.
        const code = err instanceof IdentityError ? err.code : 'ERR_ATTESTATION_FAILED'
        const caller = { kind: 'workload' as const, pid: creds.pid, uid: creds.uid, gid: creds.gid }
        audit.attestationResult({
          outcome: 'error',
          caller,
          matched: [],
          code,
          reason: (err as Error).message,
        })
        throw err
      }
    },
    release: (facts) => {
      bindingOf(facts)?.close()
      facts.close()
    },
    ...(checks ? bindingHooks(deps) : {}),
    maxConnections,
    uidPolicy: workloadUidPolicy(perUid, audit),
    ...(options.idleTimeoutMs ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
    maxMessageBytes: 64 * 1024,
    maxConcurrentStreams: MAX_STREAMS_PER_CONNECTION,
    log: options.log,
  })
  const handlerDeps = { ...deps, openStreams, factsOf: (call: { getPeer(): string }) => server.peerOf(call) }
  const handlers: SpiffeWorkloadAPIHandlers = workloadApiHandlers(handlerDeps)
  server.grpc.addService(workloadApi().SpiffeWorkloadAPI.service, handlers)
  // Tessera's own service beside the standard one, which stays as the spec defines it.
  const relay = deps.checkpoints
  if (relay !== undefined) {
    const relayDeps = { ...deps, openStreams, factsOf: (call: { getPeer(): string }) => server.peerOf(call) }
    server.grpc.addService(agentApi().tessera.agent.v1.AuditCheckpoints.service, {
      Report: unary(relayDeps, 'AuditCheckpoints/Report', (req: ReportCheckpointRequest__Output, caller) =>
        relayCheckpoint(relayDeps, relay, req, caller),
      ),
    })
  }
  const tasks = deps.tasks
  const throttle = options.beginTaskThrottle ?? { burst: 20, perSecond: 5 }
  const taskDeps = tasks && { ...tasks, beginThrottle: new RefusalThrottle(given.clock, throttle) }
  if (taskDeps !== undefined) {
    const callDeps = handlerDeps
    server.grpc.addService(tasksApi().tessera.workload.v1.Tasks.service, {
      BeginTask: unary(callDeps, 'Tasks/BeginTask', (req: BeginTaskRequest__Output, caller, call) =>
        beginTask(callDeps, taskDeps, req, caller, callWaitOf(call)),
      ),
      EndTask: unary(callDeps, 'Tasks/EndTask', (req: EndTaskRequest__Output, caller) =>
        endTask(callDeps, taskDeps, req, caller),
      ),
      ListTasks: unary(callDeps, 'Tasks/ListTasks', (_req: unknown, caller) =>
        listTasks(callDeps, taskDeps, caller),
      ),
    })
  }
  // Delegated identity (DESIGN §13): only uid 0 may act for another process (delegated-handlers.ts).
  server.grpc.addService(
    delegatedApi().tessera.agent.v1.DelegatedIdentity.service,
    delegatedIdentityHandlers(handlerDeps, taskDeps),
  )
  server.grpc.addService(
    revocationsApi().tessera.workload.v1.Revocations.service,
    revocationHandlers(handlerDeps),
  )
  server.grpc.addService(
    healthApi().grpc.health.v1.Health.service,
    healthHandlers({
      isServing: () => deps.identities.bundles() !== undefined,
      onChange: (l) => deps.identities.onChange(l),
    }),
  )
  await server.listen()
  return {
    close: () => {
      // UNAVAILABLE, not CANCELLED: clients must reconnect to the agent that comes back.
      const shutdown = new IdentityError('ERR_WORKLOAD_API_UNAVAILABLE', 'the agent is shutting down')
      for (const end of [...openStreams]) end(shutdown)
      return server.close().finally(() => audit.close())
    },
  }
}

/** Every uid may hold `cap` connections; a connection past it is closed at accept and audited (summarised). */
function workloadUidPolicy(cap: number, audit: AuditLog): UidConnectionPolicy {
  return {
    capFor: () => cap,
    onRefused: ({ code, reason, creds }) =>
      audit.callDenied({
        method: 'connect',
        code,
        reason,
        caller: { kind: 'workload', pid: creds.pid, uid: creds.uid, gid: creds.gid },
      }),
  }
}
