import type { ServerResponse } from 'node:http'
import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'

function refusalHeaders(refusal: Refusal, length: number) {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'content-length': String(length),
    'cache-control': 'no-store',
  }
  if (refusal.status === 401)
    headers['www-authenticate'] =
      refusal.code === 'ERR_AUTH_MISSING' ? 'Bearer' : 'Bearer error="invalid_token"'
  if (refusal.retryAfterSeconds !== undefined) headers['retry-after'] = String(refusal.retryAfterSeconds)
  return headers
}

/** A refusal as status, headers and its JSON body `{ "error": code, "message": reason }`; a {@link GuardRefused} is one. */
export interface Refusal {
  readonly status: number
  /** The stable code (`ERR_…`), the body's `error`. */
  readonly code: string
  /** One line, the body's `message`. */
  readonly reason: string
  /** Sent as `Retry-After` (429). */
  readonly retryAfterSeconds?: number
}

/**
 * Answers a refused request: its status, `{ "error": code, "message": reason }`, `WWW-Authenticate`
 * on 401 and `Retry-After` on 429.
 * @example
 * if (!decision.allowed) return writeRefusal(res, decision)
 */
export function writeRefusal(res: ServerResponse, refusal: Refusal): void {
  const body = JSON.stringify({ error: refusal.code, message: refusal.reason })
  res.writeHead(refusal.status, refusalHeaders(refusal, Buffer.byteLength(body)))
  res.end(body)
}

/**
 * Answers a refused upgrade on the raw socket (there is no `ServerResponse` for an upgrade), then
 * destroys the socket.
 * @example
 * if (!decision.allowed) return writeRefusalToSocket(socket, decision)
 */
export function writeRefusalToSocket(socket: Duplex, refusal: Refusal): void {
  const body = JSON.stringify({ error: refusal.code, message: refusal.reason })
  const headers = { ...refusalHeaders(refusal, Buffer.byteLength(body)), connection: 'close' }
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`)
  const head = `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status] ?? ''}\r\n${lines.join('')}\r\n`
  if (!socket.writable) {
    socket.destroy()
    return
  }
  socket.end(head + body, () => socket.destroy())
}
