import { once } from 'node:events'
import {
  createServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from 'node:http'
import { type Agent, createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import type { ListenAddress } from '../common/config/guarded-app-config.js'
import { svidCredentials, svidTlsOptions } from '../common/guard/svid-tls.js'
import type { CallDenied } from '../common/log/audit-log.js'
import { IdentityError } from '../lib/core/errors.js'
import { REQUEST_ID_HEADER } from '../lib/guard/correlation-id.js'
import type { Guard } from '../lib/guard/guard.js'
import { callerOf, guardRequests, writeRefusal } from '../lib/guard/http-middleware.js'
import { canonicalRequestPath } from '../lib/guard/request-path.js'
import type { X509Source } from '../lib/workload/x509-source.js'
import { type Route, routeFor } from './broker-routes.js'
import { type EgressContext, handleAbsoluteRequest, handleConnect } from './egress-proxy.js'
import { forwardOnRoute, type RouteContext } from './route-forward.js'

/** What {@link startBrokerServer} needs. */
export interface BrokerServerOptions {
  readonly listen: ListenAddress
  /** Each route with the guard that decides its requests (the route's policy). */
  readonly routes: ReadonlyArray<{ readonly route: Route; readonly guard: Guard }>
  /** Decides (refuses, audited) a request whose path is not even well formed. */
  readonly screen: Guard
  readonly routeContext: RouteContext
  readonly egress: EgressContext
  readonly upstreamAgent: Agent
  readonly audit: { callDenied(e: CallDenied): void }
  readonly log: Logger
  /** With TLS: the broker's own SVID, whose rotations apply to new connections. */
  readonly tlsSource?: Pick<X509Source, 'getX509Svid' | 'onUpdate'>
}

/** A listening broker. */
export interface RunningBrokerServer {
  readonly address: ListenAddress
  close(): Promise<void>
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void

function routeHandlers(options: BrokerServerOptions): Map<Route, Handler> {
  const onError = (err: unknown, req: IncomingMessage) =>
    options.log.error({ err, method: req.method }, 'The guard failed on a request.')
  const handlers = new Map<Route, Handler>()
  for (const { route, guard } of options.routes) {
    const forward: Handler = (req, res) => {
      const caller = callerOf(req)
      const correlation = req.headers[REQUEST_ID_HEADER]
      forwardOnRoute(req, res, route, options.routeContext, {
        caller:
          caller === undefined
            ? { kind: 'remote', address: req.socket.remoteAddress ?? 'unknown' }
            : {
                kind: 'svid',
                spiffeId: caller.id.toString(),
                address: req.socket.remoteAddress ?? 'unknown',
              },
        via: caller?.via ?? 'unknown',
        correlationId: typeof correlation === 'string' ? correlation : undefined,
      })
    }
    handlers.set(route, guardRequests(guard, forward, { onError }))
  }
  return handlers
}

/** An HTTPS server with the broker's SVID (client certificates asked for, checked by the guard). */
function makeTlsServer(options: BrokerServerOptions, onRequest: RequestListener): Server {
  const source = options.tlsSource!
  const server = createHttpsServer(svidTlsOptions(source), onRequest)
  const unsubscribe = source.onUpdate(() => {
    try {
      server.setSecureContext(svidCredentials(source.getX509Svid()))
    } catch (err) {
      const code = err instanceof IdentityError ? err.code : 'ERR_INTERNAL'
      options.log.warn({ code }, 'The broker SVID is no longer issued; still presenting the last one.')
    }
  })
  server.once('close', unsubscribe)
  return server
}

function makeServer(options: BrokerServerOptions, tunnels: Set<Duplex>): Server {
  const handlers = routeHandlers(options)
  const screen = guardRequests(options.screen, () => {}, {})
  const all = options.routes.map((r) => r.route)
  const onRequest: RequestListener = (req, res) => {
    const target = req.url ?? ''
    // Absolute-form (`GET http://host/…`): a forward-proxy request, never a route's.
    if (!target.startsWith('/')) return handleAbsoluteRequest(options.egress, req, res)
    let path: string | undefined
    try {
      path = canonicalRequestPath(target)
    } catch {
      return screen(req, res) // refused and audited: ERR_PATH_INVALID
    }
    const route = routeFor(all, path)
    const handler = route === undefined ? undefined : handlers.get(route)
    if (handler !== undefined) return handler(req, res)
    const reason = `no route for ${path.slice(0, 200)}`
    options.audit.callDenied({
      method: req.method ?? 'GET',
      resource: path.slice(0, 256),
      path: path.slice(0, 256),
      code: 'ERR_ROUTE_NOT_FOUND',
      reason,
      caller: { kind: 'remote', address: req.socket.remoteAddress ?? 'unknown' },
    })
    writeRefusal(res, { status: 404, code: 'ERR_ROUTE_NOT_FOUND', reason })
  }
  const server = options.tlsSource === undefined ? createServer(onRequest) : makeTlsServer(options, onRequest)
  const connect = handleConnect(options.egress)
  server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    tunnels.add(socket)
    socket.once('close', () => tunnels.delete(socket))
    connect(req, socket, head)
  })
  server.on('upgrade', (_req: IncomingMessage, socket: Duplex) => {
    const body = JSON.stringify({
      error: 'ERR_UPGRADE_REFUSED',
      message: 'the broker does not upgrade connections',
    })
    socket.end(
      `HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    )
  })
  server.headersTimeout = 20_000
  server.requestTimeout = 0
  return server
}

/**
 * Starts the broker's listener: origin-form requests go to their route (guard, then injection and
 * scrubbing), absolute-form requests and CONNECT to the forward proxy (identity, then allowlist).
 * @throws ERR_CONFIG_INVALID when it cannot listen
 */
export async function startBrokerServer(options: BrokerServerOptions): Promise<RunningBrokerServer> {
  const tunnels = new Set<Duplex>()
  const server = makeServer(options, tunnels)
  server.listen(options.listen.port, options.listen.host)
  try {
    await Promise.race([
      once(server, 'listening'),
      once(server, 'error').then(([err]) => Promise.reject(err)),
    ])
  } catch (err) {
    server.emit('close') // it never listened: let the SVID watch go
    const code = (err as NodeJS.ErrnoException).code ?? 'error'
    throw new IdentityError(
      'ERR_CONFIG_INVALID',
      `cannot listen on ${options.listen.host}:${options.listen.port} (${code})`,
      { cause: err },
    )
  }
  const { port } = server.address() as AddressInfo
  return {
    address: { host: options.listen.host, port },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeAllConnections()
      for (const socket of tunnels) socket.destroy()
      options.upstreamAgent.destroy()
      await closed
    },
  }
}
