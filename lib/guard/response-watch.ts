import type { ServerResponse } from 'node:http'
import type { CredentialEnded } from './decision.js'
import type { Guard } from './guard.js'
import { writeRefusal } from './refusal.js'

const EVENT_STREAM = /^content-type:[ \t]*text\/event-stream/im

/**
 * True when `res` answers with an event stream (`text/event-stream`, SSE). Headers given only to
 * `writeHead` are not kept for `getHeader`: those are read from the head Node wrote (`_header`, the
 * serialized head every Node version has kept on the response once sent).
 * @example
 * if (isEventStream(res)) res.end()
 */
export function isEventStream(res: Pick<ServerResponse, 'getHeader'>): boolean {
  const type = res.getHeader('content-type')
  if (type !== undefined) return String(type).trim().toLowerCase().startsWith('text/event-stream')
  const head = (res as { readonly _header?: unknown })._header
  return typeof head === 'string' && EVENT_STREAM.test(head)
}

/**
 * Ends a reply whose credential was revoked or expired, as the guard middleware does by default:
 * before its headers, it is answered 401 with the code (`{ "error": code, "message": reason }`); an
 * event stream (`text/event-stream`) is ended cleanly, after the last whole write (a handler that
 * writes one event in several writes should cut at its own event boundary: pass its own
 * `cutResponse`); any other reply is destroyed, so that a body cut short never looks complete.
 * @example
 * app.use(guardMiddleware(guard, { cutResponse: (req, res, why) => { stopEvents(res); endCutResponse(res, why) } }))
 */
export function endCutResponse(res: ServerResponse, why: CredentialEnded): void {
  if (res.writableEnded || res.destroyed) return
  if (!res.headersSent) writeRefusal(res, { status: 401, code: why.code, reason: why.reason })
  else if (isEventStream(res)) res.end()
  else res.destroy()
}

/**
 * Watches the credential an allowed request was admitted with until its reply is over: when it is
 * revoked or expires first, the cut is audited (`Guard.recordStreamCut`) and `cut` ends the reply.
 */
export function watchResponse(
  guard: Guard,
  admitted: Parameters<Guard['watchCredential']>[0],
  res: ServerResponse,
  cut: (why: CredentialEnded) => void,
): void {
  if (res.writableEnded || res.destroyed) return
  const stop = guard.watchCredential(admitted, (why) => {
    if (res.writableEnded || res.destroyed) return
    guard.recordStreamCut(admitted, why)
    cut(why)
  })
  res.once('close', stop)
  res.once('finish', stop)
}
