import type { Logger } from 'pino'
import { IdentityError } from '../../lib/core/errors.js'
import type { SpiffeWorkloadAPIHandlers } from '../../lib/gen/SpiffeWorkloadAPI.js'
import { healthApi, workloadApi } from '../../lib/grpc/protos.js'
import { UdsServer } from '../../lib/grpc/uds-server.js'
import { bindingOf } from '../../lib/peercred/peer-binding.js'
import { fdOf } from '../../lib/peercred/peercred.js'
import {
  type ProcessFacts,
  type ProcessFactsOptions,
  readProcessFacts,
} from '../../lib/peercred/process-facts.js'
import { bindingHooks, bindOrClose, closeFacts } from './binding.js'
import type { WorkloadApiDeps } from './context.js'
import { healthHandlers } from './health-service.js'
import type { OpenStreams } from './update-stream.js'
import { workloadApiHandlers } from './workload-service.js'

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
  /** Most concurrent connections (each may carry many streams). */
  readonly maxConnections?: number
  /**
   * The DESIGN §6.1 binding of each connection to its process (relay, checks before every answer,
   * binary pins withheld from preloaded code); default true. Off only for the bench's comparison.
   */
  readonly bindingChecks?: boolean
}

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
  deps: Omit<WorkloadApiDeps, 'factsOf' | 'openStreams'>,
): Promise<WorkloadServer> {
  const openStreams: OpenStreams = new Set()
  const checks = options.bindingChecks ?? true
  if (!checks) options.log.error({}, BINDING_OFF_WARNING)
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
        deps.audit.attestationResult({
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
    maxConnections: options.maxConnections ?? 4096,
    maxMessageBytes: 64 * 1024,
    log: options.log,
  })
  const handlers: SpiffeWorkloadAPIHandlers = workloadApiHandlers({
    ...deps,
    openStreams,
    factsOf: (call) => server.peerOf(call),
  })
  server.grpc.addService(workloadApi().SpiffeWorkloadAPI.service, handlers)
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
      return server.close()
    },
  }
}
