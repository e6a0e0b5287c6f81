import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { writeRefusalToSocket } from '../lib/guard/http-middleware.js'
import { clientResponseHeaders } from './proxy-headers.js'
import { openUpstream, type ProxyContext, upstreamFailure } from './proxy-http.js'
import { relayWebSocket, type WebSocketRelayOptions } from './ws-relay.js'

/** How one allowed WebSocket is relayed: its message decider, its credential's expiry, its end audit. */
export type WebSocketSession = Omit<WebSocketRelayOptions, 'clock'>

function headLines(statusLine: string, rawHeaders: ReadonlyArray<string>): string {
  let text = `${statusLine}\r\n`
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) text += `${rawHeaders[i]}: ${rawHeaders[i + 1]}\r\n`
  return `${text}\r\n`
}

/** Relays an upstream's non-101 answer to an upgrade request, then closes the client's socket. */
function relayRefusal(answer: IncomingMessage, socket: Duplex): void {
  const headers = { ...clientResponseHeaders(answer.headers), connection: 'close' }
  const raw = Object.entries(headers).flatMap(([k, v]) =>
    Array.isArray(v) ? v.flatMap((item) => [k, item]) : [k, String(v)],
  )
  const status = `HTTP/1.1 ${answer.statusCode ?? 502} ${answer.statusMessage ?? ''}`
  socket.write(headLines(status, raw))
  answer.pipe(socket)
  answer.on('error', () => socket.destroy())
}

/**
 * Forwards an allowed WebSocket upgrade to the upstream. When the upstream answers 101, its
 * response head goes to the client and the two connections are relayed by `relayWebSocket` (every
 * client frame read, messages decided by `session.decideMessage`, closed when the credential
 * expires); any other answer is relayed and the connection closed; upstream down or silent →
 * 502/504 with a JSON body, written on the raw socket.
 * @example
 * server.on('upgrade', guardUpgrades(guard, (req, socket, head) => forwardUpgrade(req, socket, head, { ctx, session })))
 */
export function forwardUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  how: { readonly ctx: ProxyContext; readonly session: WebSocketSession },
): void {
  const { ctx, session } = how
  const upstream = openUpstream(req, ctx, { isUpgrade: true })
  const onClientGone = () => upstream.destroy()
  socket.once('close', onClientGone)
  upstream.on('upgrade', (answer, upstreamSocket, upstreamHead) => {
    socket.off('close', onClientGone)
    socket.write(
      headLines(`HTTP/1.1 101 ${answer.statusMessage ?? 'Switching Protocols'}`, answer.rawHeaders),
    )
    relayWebSocket(
      socket,
      upstreamSocket,
      { clientHead: head, upstreamHead },
      { ...session, clock: ctx.clock },
    )
  })
  upstream.on('response', (answer) => relayRefusal(answer, socket))
  upstream.on('error', (err) => {
    const failure = upstreamFailure(err)
    ctx.log.warn({ err, code: failure.code, upstream: ctx.target.uri }, 'Upstream upgrade failed.')
    writeRefusalToSocket(socket, failure)
  })
  upstream.end()
}
