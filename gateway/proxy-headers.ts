import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http'
import { withoutHopByHop } from '../common/http/hop-by-hop.js'
import { REQUEST_ID_HEADER } from '../lib/guard/correlation-id.js'
import { AUTH_METHOD_HEADER, IDENTITY_HEADER } from '../lib/guard/http-middleware.js'

/**
 * Headers the gateway consumes or replaces: the caller's credential (the upstream gets the verified
 * identity instead, and a token must not leak into the tool's logs) and client-claimed forwarding
 * information.
 */
const GATEWAY_OWNED: ReadonlySet<string> = new Set([
  'authorization',
  'workload-identity-token',
  'workload-proof-token',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-real-ip',
])

/** What {@link upstreamRequestHeaders} needs besides the request. */
export interface UpstreamHeaderOptions {
  readonly isTls: boolean
  readonly isUpgrade?: boolean
  /** The `Host` the upstream is sent: its own authority (see `upstreamHost`). */
  readonly upstreamHost: string
}

/**
 * The headers to send upstream for an allowed request: the client's, minus hop-by-hop headers,
 * the credential and client-claimed forwarding headers, plus `X-Forwarded-For`/`-Proto`. `Host`
 * becomes the upstream's own (a tool that pins its allowed hosts against DNS rebinding accepts it,
 * wherever the gateway listens), and the Host the client sent, which the guard has checked, goes in
 * `X-Forwarded-Host`. The request must already carry the verified identity header and its
 * correlation id, `X-Request-Id` (the guard middleware sets them after stripping any the client
 * sent). For a WebSocket upgrade, `Connection: Upgrade` and `Upgrade: websocket`
 * are kept (no other protocol), and `Sec-WebSocket-Extensions` is never forwarded.
 * @example
 * http.request({ ...connectOptions(target), headers: upstreamRequestHeaders(req, { isTls: false, upstreamHost: '127.0.0.1:9000' }) })
 */
export function upstreamRequestHeaders(
  req: IncomingMessage,
  options: UpstreamHeaderOptions,
): OutgoingHttpHeaders {
  const out = withoutHopByHop(req.headers, (name) => GATEWAY_OWNED.has(name))
  out['host'] = options.upstreamHost
  if (req.headers.host !== undefined) out['x-forwarded-host'] = req.headers.host
  // Set again: a client could name them in `Connection` to have them dropped.
  for (const name of [IDENTITY_HEADER, AUTH_METHOD_HEADER, REQUEST_ID_HEADER]) {
    const value = req.headers[name]
    if (value !== undefined) out[name] = value
  }
  out['x-forwarded-for'] = req.socket.remoteAddress ?? 'unknown'
  out['x-forwarded-proto'] = options.isTls ? 'https' : 'http'
  // No WebSocket extension is offered: the gateway reads every client frame (permessage-deflate
  // would hide the messages), and only a WebSocket ever gets this far (the guard refuses the rest).
  delete out['sec-websocket-extensions']
  if (options.isUpgrade === true && req.headers.upgrade?.trim().toLowerCase() === 'websocket') {
    out['connection'] = 'Upgrade'
    out['upgrade'] = 'websocket'
  }
  return out
}

/**
 * The upstream response's headers for the client, minus hop-by-hop headers (Node frames the body
 * again for the client's connection).
 * @example
 * res.writeHead(upstream.statusCode ?? 502, clientResponseHeaders(upstream.headers))
 */
export function clientResponseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  return withoutHopByHop(headers)
}
