import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { writeRefusalToSocket } from '../guard/http-middleware.js'
import { clientResponseHeaders } from './proxy-headers.js'
import { openUpstream, type ProxyContext, upstreamFailure } from './proxy-http.js'

function headLines(statusLine: string, rawHeaders: ReadonlyArray<string>): string {
  let text = `${statusLine}\r\n`
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) text += `${rawHeaders[i]}: ${rawHeaders[i + 1]}\r\n`
  return `${text}\r\n`
}

/** Pipes two sockets both ways; either closing or failing ends both. */
function splice(client: Duplex, upstream: Duplex): void {
  const end = () => {
    client.destroy()
    upstream.destroy()
  }
  for (const socket of [client, upstream]) {
    socket.on('error', end)
    socket.on('close', end)
  }
  upstream.pipe(client)
  client.pipe(upstream)
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
 * Forwards an allowed upgrade (WebSocket) to the upstream. When the upstream answers 101, its
 * response head goes to the client and the two connections are piped both ways (`head`, the bytes
 * that followed the client's request, first); any other answer is relayed and the connection
 * closed; upstream down or silent → 502/504 with a JSON body, written on the raw socket.
 * @example
 * server.on('upgrade', guardUpgrades(guard, (req, socket, head) => forwardUpgrade(req, socket, head, ctx)))
 */
export function forwardUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, ctx: ProxyContext): void {
  const upstream = openUpstream(req, ctx, { isUpgrade: true })
  const onClientGone = () => upstream.destroy()
  socket.once('close', onClientGone)
  upstream.on('upgrade', (answer, upstreamSocket, upstreamHead) => {
    socket.off('close', onClientGone)
    socket.write(
      headLines(`HTTP/1.1 101 ${answer.statusMessage ?? 'Switching Protocols'}`, answer.rawHeaders),
    )
    if (upstreamHead.length > 0) socket.write(upstreamHead)
    if (head.length > 0) upstreamSocket.write(head)
    splice(socket, upstreamSocket)
  })
  upstream.on('response', (answer) => relayRefusal(answer, socket))
  upstream.on('error', (err) => {
    const failure = upstreamFailure(err)
    ctx.log.warn({ err, code: failure.code, upstream: ctx.target.uri }, 'Upstream upgrade failed.')
    writeRefusalToSocket(socket, failure)
  })
  upstream.end()
}
