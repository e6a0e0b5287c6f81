import { once } from 'node:events'
import {
  Agent,
  createServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import type { ListenAddress } from '../common/config/guarded-app-config.js'
import { svidCredentials, svidTlsOptions } from '../common/guard/svid-tls.js'
import { type Clock, systemClock } from '../lib/core/clock.js'
import { IdentityError } from '../lib/core/errors.js'
import type { AllowedUpgrade, Guard } from '../lib/guard/guard.js'
import { guardRequests, guardUpgrades, type MiddlewareOptions } from '../lib/guard/http-middleware.js'
import { endCutResponse } from '../lib/guard/response-watch.js'
import type { X509Source } from '../lib/workload/x509-source.js'
import { mcpMiddlewareOptions, RequestBodies } from './mcp-inspection.js'
import { type CutRequest, forwardRequest, type ProxyContext } from './proxy-http.js'
import { forwardUpgrade, type WebSocketSession } from './proxy-upgrade.js'
import type { UpstreamTarget } from './upstream.js'
import type { MessageCalls } from './ws-client-messages.js'

/** What {@link startGatewayServer} needs. */
export interface GatewayServerOptions {
  readonly listen: ListenAddress
  readonly upstream: UpstreamTarget
  readonly guard: Guard
  /**
   * True when the policy has `tools` rules: request bodies are then read for MCP tool names. (A body
   * is also read to check MCP `Mcp-Method`/`Mcp-Name` headers, and to answer a denied MCP call.)
   */
  readonly readsTools: boolean
  /** True when the policy has `mcpMethods` rules: request bodies are then read for their JSON-RPC methods. */
  readonly readsMcpMethods?: boolean
  /** How long the upstream may take to send response headers. */
  readonly responseTimeoutMs: number
  /** Largest request head, and how long a client may take to send it. */
  readonly headersTimeoutMs?: number
  readonly log: Logger
  /** With TLS: the gateway's own SVID, whose rotations apply to new connections. */
  readonly tlsSource?: Pick<X509Source, 'getX509Svid' | 'onUpdate'>
  /** The time WebSocket credential expiries are measured by; default the system clock (the guard's should be the same). */
  readonly clock?: Clock
}

/** A listening gateway. */
export interface RunningGatewayServer {
  readonly address: ListenAddress
  /** Stops accepting, ends open connections and WebSocket tunnels. */
  close(): Promise<void>
}

/** An HTTPS server with the gateway's SVID; each rotation applies to new connections. */
function makeTlsServer(options: GatewayServerOptions, onRequest: RequestListener): Server {
  const source = options.tlsSource!
  const server = createHttpsServer(svidTlsOptions(source), onRequest)
  const unsubscribe = source.onUpdate(() => {
    try {
      const svid = source.getX509Svid()
      server.setSecureContext(svidCredentials(svid))
      options.log.info({ spiffeId: svid.id.toString() }, 'Gateway SVID updated.')
    } catch (err) {
      // The chosen SVID is gone (its entry deleted): keep serving the last one until it expires.
      const code = err instanceof IdentityError ? err.code : 'ERR_INTERNAL'
      options.log.warn({ code }, 'The gateway SVID is no longer issued; still presenting the last one.')
    }
  })
  server.once('close', unsubscribe)
  return server
}

/** How an allowed WebSocket is watched: its messages decided and audited, closed when its credential expires or is revoked. */
function sessionOf(guard: Guard, upgrade: AllowedUpgrade): WebSocketSession {
  const { via, expiresAtMs } = upgrade.allowed
  return {
    ...(guard.inspectsMessages && {
      decideMessage: (calls: MessageCalls) =>
        guard.checkMessage(upgrade, calls.tools, calls.mcpMethods).allowed,
    }),
    credentialExpiry: {
      atMs: expiresAtMs,
      code: via === 'jwt' ? 'ERR_JWT_EXPIRED' : 'ERR_X509_SVID_EXPIRED',
    },
    endWhen: (end) => guard.watchRevocation(upgrade, end),
    onEnded: (why) => guard.recordWebSocketEnd(upgrade, why),
  }
}

function makeServer(options: GatewayServerOptions, ctx: ProxyContext, tunnels: Set<Duplex>): Server {
  const { guard, log } = options
  const bodies = new RequestBodies()
  const onError = (err: unknown, req: IncomingMessage) =>
    log.error({ err, method: req.method }, 'The guard failed on a request.')
  const middleware: MiddlewareOptions = {
    onError,
    ...mcpMiddlewareOptions(bodies, {
      tools: options.readsTools,
      mcpMethods: options.readsMcpMethods ?? false,
    }),
  }
  // How each forwarded exchange is cut when its caller's credential is revoked or expires.
  const cuts = new WeakMap<ServerResponse, CutRequest>()
  const onRequest = guardRequests(
    guard,
    (req, res) => {
      cuts.set(res, forwardRequest(req, res, ctx, bodies.prefixOf(req)))
    },
    {
      ...middleware,
      cutResponse: (_req, res, why) => (cuts.get(res) ?? ((w) => endCutResponse(res, w)))(why),
    },
  )
  const onUpgrade = guardUpgrades(
    guard,
    (req, socket, head, allowed) => {
      tunnels.add(socket)
      socket.once('close', () => tunnels.delete(socket))
      forwardUpgrade(req, socket, head, { ctx, session: sessionOf(guard, { request: req, allowed }) })
    },
    { onError },
  )
  const server = options.tlsSource === undefined ? createServer(onRequest) : makeTlsServer(options, onRequest)
  server.on('upgrade', onUpgrade)
  server.headersTimeout = options.headersTimeoutMs ?? 20_000
  server.requestTimeout = 0 // long-lived streams (SSE) are normal for tools
  server.on('tlsClientError', (err) => log.debug({ err }, 'TLS handshake failed.'))
  return server
}

async function listen(server: Server, at: ListenAddress): Promise<ListenAddress> {
  server.listen(at.port, at.host)
  try {
    await Promise.race([
      once(server, 'listening'),
      once(server, 'error').then(([err]) => Promise.reject(err)),
    ])
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error'
    throw new IdentityError('ERR_CONFIG_INVALID', `cannot listen on ${at.host}:${at.port} (${code})`, {
      cause: err,
    })
  }
  const bound = server.address() as AddressInfo
  return { host: at.host, port: bound.port }
}

/**
 * Starts the gateway's listener: every request and every upgrade goes through the guard; allowed
 * ones are forwarded to the upstream with the verified identity header. With `tlsSource`, it serves
 * HTTPS with the gateway's SVID and accepts client certificates (mTLS) as well as bearer tokens.
 * @throws ERR_CONFIG_INVALID when it cannot listen; ERR_NO_IDENTITY when TLS has no SVID
 * @example
 * const gateway = await startGatewayServer({ listen: { host: '127.0.0.1', port: 8080 }, upstream, guard,
 *   readsTools: false, responseTimeoutMs: 30_000, log })
 */
export async function startGatewayServer(options: GatewayServerOptions): Promise<RunningGatewayServer> {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 })
  const isTls = options.tlsSource !== undefined
  const ctx: ProxyContext = {
    target: options.upstream,
    agent,
    responseTimeoutMs: options.responseTimeoutMs,
    isTls,
    log: options.log,
    clock: options.clock ?? systemClock,
  }
  const tunnels = new Set<Duplex>()
  const server = makeServer(options, ctx, tunnels)
  const address = await listen(server, options.listen).catch((err: unknown) => {
    server.emit('close') // it never listened, so 'close' would not come: let the SVID watch go
    agent.destroy()
    throw err
  })
  return {
    address,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeAllConnections()
      for (const socket of tunnels) socket.destroy()
      agent.destroy()
      await closed
    },
  }
}
