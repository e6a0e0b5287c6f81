import { type Agent, type ClientRequest, type IncomingMessage, request, type ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import type { Clock } from '../lib/core/clock.js'
import type { ErrorCode } from '../lib/core/errors.js'
import type { CredentialEnded } from '../lib/guard/guard.js'
import { writeRefusal } from '../lib/guard/http-middleware.js'
import { clientResponseHeaders, upstreamRequestHeaders } from './proxy-headers.js'
import { SseEventGate } from './sse-event-gate.js'
import type { BodyPrefix } from './tool-names.js'
import { connectOptions, type UpstreamTarget, upstreamHost } from './upstream.js'

/** What forwarding needs, for every request of one gateway. */
export interface ProxyContext {
  readonly target: UpstreamTarget
  /** Keep-alive agent for plain requests (upgrades never share a connection). */
  readonly agent: Agent
  /** How long the upstream may take to send response headers (then 504). */
  readonly responseTimeoutMs: number
  /** True when the gateway itself is served over TLS (sets `X-Forwarded-Proto: https`). */
  readonly isTls: boolean
  readonly log: Logger
  /** The time WebSocket credential expiries are measured by. */
  readonly clock: Clock
}

/** The error an upstream request ends with when the response headers did not come in time. */
export class UpstreamTimeout extends Error {
  constructor() {
    super('the upstream did not answer in time')
    this.name = 'UpstreamTimeout'
  }
}

/** The 502/504 answer for a failed upstream request, as `{ status, code, reason }`. */
export function upstreamFailure(err: unknown): { status: number; code: ErrorCode; reason: string } {
  return err instanceof UpstreamTimeout
    ? { status: 504, code: 'ERR_UPSTREAM_TIMEOUT', reason: 'the upstream did not answer in time' }
    : { status: 502, code: 'ERR_UPSTREAM_UNAVAILABLE', reason: 'the upstream is unavailable' }
}

/**
 * Starts the upstream request for `req`; it is destroyed with {@link UpstreamTimeout} unless the
 * response headers (or the upgrade) arrive within the context's timeout.
 * @example
 * const upstream = openUpstream(req, ctx, { isUpgrade: false })
 */
export function openUpstream(
  req: IncomingMessage,
  ctx: ProxyContext,
  how: { isUpgrade: boolean },
): ClientRequest {
  const upstream = request({
    ...connectOptions(ctx.target),
    agent: how.isUpgrade ? false : ctx.agent,
    method: req.method,
    path: req.url,
    headers: upstreamRequestHeaders(req, {
      isTls: ctx.isTls,
      isUpgrade: how.isUpgrade,
      upstreamHost: upstreamHost(ctx.target),
    }),
  })
  const timer = setTimeout(() => upstream.destroy(new UpstreamTimeout()), ctx.responseTimeoutMs)
  const clear = () => clearTimeout(timer)
  upstream.once('response', clear)
  upstream.once('upgrade', clear)
  upstream.once('error', clear)
  upstream.once('close', clear)
  return upstream
}

function sendBody(req: IncomingMessage, upstream: ClientRequest, prefix: BodyPrefix | undefined): void {
  for (const chunk of prefix?.chunks ?? []) upstream.write(chunk)
  if (prefix?.isComplete === true) upstream.end()
  else req.pipe(upstream)
}

/** Ends a forwarded request whose caller's credential was revoked or expired (see `forwardRequest`). */
export type CutRequest = (why: CredentialEnded) => void

/** Streams the upstream's answer to the client; an event stream through a gate, to be cut between events. */
function relayAnswer(answer: IncomingMessage, res: ServerResponse): SseEventGate | undefined {
  res.writeHead(answer.statusCode ?? 502, answer.statusMessage, clientResponseHeaders(answer.headers))
  // A streamed reply (no Content-Length: chunked, SSE) may not send its first bytes for a long
  // time, or ever (an idle notification stream): its headers go to the client now, not with them.
  if (answer.headers['content-length'] === undefined) res.flushHeaders()
  const type = answer.headers['content-type']?.trim().toLowerCase()
  if (type?.startsWith('text/event-stream') !== true) {
    answer.pipe(res)
    return undefined
  }
  const gate = new SseEventGate()
  answer.pipe(gate).pipe(res)
  return gate
}

/**
 * Forwards an allowed request to the upstream and streams the response back (the headers of a
 * streamed reply at once, before its first bytes). The body starts with
 * `prefix` when the gateway has read part of it. Upstream down → 502, no response headers in time →
 * 504, both with a JSON body; a client that goes away cancels the upstream request. Returns the
 * function that cuts the exchange when the caller's credential is revoked or expires: the upstream
 * request is destroyed; before the response headers, the client is answered 401 with the code; an
 * event stream ends cleanly after its last whole event; any other reply is destroyed (a body cut
 * short must not look complete).
 * @example
 * const cut = forwardRequest(req, res, ctx)
 */
export function forwardRequest(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: ProxyContext,
  prefix?: BodyPrefix,
): CutRequest {
  const upstream = openUpstream(req, ctx, { isUpgrade: false })
  let answer: IncomingMessage | undefined
  let gate: SseEventGate | undefined
  let isCut = false
  upstream.on('response', (received) => {
    if (isCut || res.writableEnded || res.destroyed) {
      received.resume()
      return
    }
    answer = received
    gate = relayAnswer(received, res)
    received.on('error', () => isCut || res.destroy())
  })
  upstream.on('error', (err) => {
    if (isCut) return
    const failure = upstreamFailure(err)
    ctx.log.warn(
      { err, code: failure.code, method: req.method, upstream: ctx.target.uri },
      'Upstream request failed.',
    )
    if (!res.headersSent) writeRefusal(res, failure)
    else res.destroy()
  })
  res.on('close', () => {
    if (!res.writableFinished) upstream.destroy()
  })
  sendBody(req, upstream, prefix)
  return (why) => {
    if (isCut) return
    isCut = true
    req.unpipe(upstream)
    if (answer !== undefined && gate !== undefined) answer.unpipe(gate)
    else answer?.unpipe(res)
    upstream.destroy()
    if (!res.headersSent) writeRefusal(res, { status: 401, code: why.code, reason: why.reason })
    else if (gate === undefined || !gate.cut()) res.destroy()
  }
}
