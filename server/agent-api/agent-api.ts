import { experimental, Server } from '@grpc/grpc-js'
import type { NodeHandlers } from '../../lib/gen/tessera/agent/v1/Node.js'
import type { PushCertificateProvider } from '../../lib/grpc/certificate-provider.js'
import { agentApi, healthApi } from '../../lib/grpc/protos.js'
import type { ServerContext } from '../context.js'
import { serverHealthHandlers } from '../health/server-health.js'
import { AuthorizedEntries } from '../registration/authorized-entries.js'
import { AgentAuthenticator } from './agent-auth.js'
import { attestAgentHandler, renewAgentHandler } from './attestation.js'
import type { AgentApiDeps } from './handler.js'
import { batchNewX509SvidHandler, newJwtSvidHandler } from './issuance.js'
import { SyncSessions, syncAuthorizedHandler } from './sync-authorized.js'

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
  const auth = new AgentAuthenticator(ctx)
  const authorized = new AuthorizedEntries({
    entries: ctx.datastore.entries,
    events: ctx.events,
    clock: ctx.clock,
  })
  const deps: AgentApiDeps = { ctx, auth, authorized, log }
  const sessions = new SyncSessions()
  const server = new Server({ 'grpc.max_receive_message_length': MAX_RECEIVE_MESSAGE_BYTES })
  const handlers: NodeHandlers = {
    AttestAgent: attestAgentHandler(deps),
    RenewAgent: renewAgentHandler(deps),
    SyncAuthorized: syncAuthorizedHandler(deps, sessions),
    BatchNewX509Svid: batchNewX509SvidHandler(deps),
    NewJwtSvid: newJwtSvidHandler(deps),
  }
  server.addService(agentApi().tessera.agent.v1.Node.service, handlers)
  addServices?.(server)
  if (ctx.health !== undefined)
    server.addService(healthApi().grpc.health.v1.Health.service, serverHealthHandlers(ctx.health, []))
  // One provider serves both roles (grpc-js passes the two arguments through in swapped order).
  const credentials = experimental.createCertificateProviderServerCredentials(tls, tls, false)
  const address = `${hostForUri(ctx.settings.bindAddress)}:${ctx.settings.bindPort}`
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, credentials, (err, bound) => (err ? reject(err) : resolve(bound))),
  )
  log.info({ address: `${ctx.settings.bindAddress}:${port}` }, 'Agent API listening.')
  return {
    port,
    close: async () => {
      sessions.endAll()
      await shutdown(server)
      auth.close()
      authorized.close()
    },
  }
}

/** An IPv6 literal needs brackets in a gRPC target. */
function hostForUri(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
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
