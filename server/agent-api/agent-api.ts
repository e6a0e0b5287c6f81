import { Server } from '@grpc/grpc-js'
import type { NodeHandlers } from '../../common/gen/tessera/agent/v1/Node.js'
import type { PushCertificateProvider } from '../../common/grpc/certificate-provider.js'
import { agentApi, healthApi } from '../../common/grpc/protos.js'
import { listenTls } from '../../common/grpc/tls-listener.js'
import { SummarisingAuditLog } from '../../common/log/audit-summary.js'
import { CheckpointService } from '../audit-checkpoints/checkpoint-service.js'
import { PendingReports } from '../consent/pending-reports.js'
import type { ServerContext } from '../context.js'
import { serverHealthHandlers } from '../health/server-health.js'
import { AuthorizedEntries } from '../registration/authorized-entries.js'
import { taskServiceOf } from '../tasks/task-wiring.js'
import { AgentAuthenticator } from './agent-auth.js'
import { attestAgentHandler, renewAgentHandler } from './attestation.js'
import type { AgentApiDeps } from './handler.js'
import { batchNewX509SvidHandler, newJwtSvidHandler, newWitSvidHandler } from './issuance.js'
import { reportCheckpointHandler } from './report-checkpoint.js'
import { reportPendingHandler } from './report-pending.js'
import { SyncSessions, syncAuthorizedHandler } from './sync-authorized.js'
import { endTaskHandler, newTaskTokenHandler } from './task-issuance.js'

/** A running agent API. */
export interface AgentApi {
  /** The TCP port bound (the real one when the config asked for 0). */
  readonly port: number
  /** Ends open streams, lets calls in flight finish (up to {@link SHUTDOWN_GRACE_MS}), then stops. */
  close(): Promise<void>
}

/** Largest request accepted: a full batch of CSRs fits many times over. */
export const MAX_RECEIVE_MESSAGE_BYTES = 4 * 1024 * 1024
/** How long `close` waits for calls in flight before cutting them off. */
export const SHUTDOWN_GRACE_MS = 2000

/**
 * HTTP/2 limits of the agent API (rapid reset and stream floods). What Node 20 cannot do: its http2
 * has no `streamResetBurst`/`streamResetRate` options (added by nodejs/node#54875 in later lines; absent
 * from the 20.20 binary), so the RST_STREAM rate cannot be tuned: the bundled nghttp2 (1.61) applies
 * its built-in default (a burst of 1000, then 33/s, past which it ends the session with GOAWAY). Nor
 * does grpc-js 1.14 pass `maxSessionRejectedStreams` / `maxSessionInvalidFrames` through, so Node's
 * defaults (100 and 1000) hold. What is set here: concurrent streams per connection, session memory
 * (grpc-js would otherwise lift Node's limit altogether), an idle timeout and keepalive pings.
 */
export const AGENT_API_SERVER_OPTIONS = {
  'grpc.max_receive_message_length': MAX_RECEIVE_MESSAGE_BYTES,
  /** An agent uses one sync stream and a few unary calls at a time. */
  'grpc.max_concurrent_streams': 100,
  /** Node's own default (10 MB); grpc-js would otherwise lift the limit altogether. */
  'grpc-node.max_session_memory': 10,
  /** A connection with no stream for 5 min is closed (agents keep their sync stream open). */
  'grpc.max_connection_idle_ms': 5 * 60_000,
  /** Dead peers are found by pings: every 2 min, 20 s to answer. */
  'grpc.keepalive_time_ms': 2 * 60_000,
  'grpc.keepalive_timeout_ms': 20_000,
} as const

/**
 * Serves the agent API (`tessera.agent.v1.Node`) over TCP + TLS on `bindAddress:bindPort`. The server
 * presents its own SVID from `tls` and asks for a client certificate without requiring one (AttestAgent
 * comes before the agent has an SVID); every other call authenticates the agent itself, per call.
 * @throws when the address cannot be bound (the grpc-js error)
 */
export async function startAgentApi(
  ctx: ServerContext,
  tls: PushCertificateProvider,
  /** Adds more services to the same TLS server (remote admin) before it binds. */
  addServices?: (server: Server) => void,
): Promise<AgentApi> {
  const log = ctx.log.child({ component: 'agent-api' })
  // Refusals (a peer presenting a bad or unknown SVID, again and again) are audited summarised.
  const audit = new SummarisingAuditLog(ctx.audit, {
    clock: ctx.clock,
    windowMs: ctx.settings.auditSummaryWindowMs,
  })
  const summarised: ServerContext = { ...ctx, audit }
  const auth = new AgentAuthenticator(summarised)
  const authorized = new AuthorizedEntries({
    entries: ctx.datastore.entries,
    events: ctx.events,
    clock: ctx.clock,
  })
  const deps: AgentApiDeps = { ctx: summarised, auth, authorized, log }
  const sessions = new SyncSessions()
  const reports = new PendingReports({
    store: ctx.datastore.pendingRequests,
    clock: ctx.clock,
    audit: ctx.audit,
    drops: ctx.pendingDrops ?? { count: 0, isAudited: false },
    settings: ctx.settings,
  })
  const checkpoints = new CheckpointService({
    store: ctx.datastore.checkpoints,
    bundles: ctx.bundles,
    clock: ctx.clock,
    audit,
  })
  const tasks = ctx.tasks ?? taskServiceOf(ctx)
  const server = new Server(AGENT_API_SERVER_OPTIONS)
  const handlers: NodeHandlers = {
    AttestAgent: attestAgentHandler(deps),
    RenewAgent: renewAgentHandler(deps),
    SyncAuthorized: syncAuthorizedHandler(deps, sessions),
    BatchNewX509Svid: batchNewX509SvidHandler(deps),
    NewJwtSvid: newJwtSvidHandler(deps),
    NewWitSvid: newWitSvidHandler(deps),
    ReportPending: reportPendingHandler(deps, reports),
    ReportCheckpoint: reportCheckpointHandler(deps, checkpoints),
    NewTaskToken: newTaskTokenHandler(deps, tasks),
    EndTask: endTaskHandler(deps, tasks),
  }
  server.addService(agentApi().tessera.agent.v1.Node.service, handlers)
  addServices?.(server)
  if (ctx.health !== undefined)
    server.addService(healthApi().grpc.health.v1.Health.service, serverHealthHandlers(ctx.health, []))
  const listener = await listenTls(server, {
    host: unbracketed(ctx.settings.bindAddress),
    port: ctx.settings.bindPort,
    certificates: tls,
    log,
    onRefused: ({ address, code, reason }) =>
      audit.callDenied({ method: 'connect', code, reason, caller: { kind: 'remote', address } }),
  })
  const port = listener.port
  log.info({ address: `${ctx.settings.bindAddress}:${port}` }, 'Agent API listening.')
  return {
    port,
    close: async () => {
      sessions.endAll()
      await listener.close()
      await shutdown(server)
      audit.close()
      auth.close()
      authorized.close()
    },
  }
}

/** A bind address as `net.listen` takes it: an IPv6 literal without brackets. */
function unbracketed(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
}

function shutdown(server: Server): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown()
      resolve()
    }, SHUTDOWN_GRACE_MS)
    server.tryShutdown(() => {
      clearTimeout(timer)
      resolve()
    })
  })
}
