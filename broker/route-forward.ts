import type { IncomingMessage, ServerResponse } from 'node:http'
import { type Agent, request } from 'node:https'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib'
import type { Logger } from 'pino'
import type { AuditCaller, AuditCode, CallForwarded } from '../common/log/audit-log.js'
import type { ErrorCode } from '../lib/core/errors.js'
import { writeRefusal } from '../lib/guard/http-middleware.js'
import type { Route } from './broker-routes.js'
import { callerHeaders, upstreamHeaders } from './route-headers.js'

/** What forwarding on a route needs, for every request of one broker. */
export interface RouteContext {
  /** Keep-alive HTTPS agent whose TLS verifies upstreams (with `--upstream-ca`, against that CA). */
  readonly agent: Agent
  /** How long an upstream may take to send response headers (then 504). */
  readonly responseTimeoutMs: number
  /** The largest response body passed on (then 502, or the stream cut). */
  readonly maxResponseBytes: number
  readonly log: Logger
  readonly audit: { callForwarded(e: CallForwarded): void }
}

/** Who is calling, for the audit. */
export interface ForwardCaller {
  readonly caller: AuditCaller
  readonly via: string
  readonly correlationId: string | undefined
}

class UpstreamTimeout extends Error {}
class TooLarge extends Error {}

/**
 * The upstream request target for a canonical broker target: the route's base path, the rest of
 * the path after its prefix, the caller's query without a parameter of the injected name, then the
 * injected parameter.
 */
export function upstreamTarget(route: Route, target: string): { path: string; logged: string } {
  const queryAt = target.indexOf('?')
  const path = queryAt === -1 ? target : target.slice(0, queryAt)
  const rest = path.length < route.prefix.length ? '' : path.slice(route.prefix.length)
  const logged = `${route.upstream.pathname}${rest}`
  const params =
    queryAt === -1
      ? []
      : target
          .slice(queryAt + 1)
          .split('&')
          .filter((p) => p.length > 0)
  const { injection } = route
  const kept =
    injection.kind === 'query'
      ? params.filter((p) => safeName(p.split('=')[0] ?? '') !== injection.name)
      : params
  if (injection.kind === 'query') kept.push(`${injection.name}=${encodeURIComponent(injection.value)}`)
  return { path: kept.length === 0 ? logged : `${logged}?${kept.join('&')}`, logged }
}

function safeName(encoded: string): string {
  try {
    return decodeURIComponent(encoded.replace(/\+/g, ' '))
  } catch {
    return encoded
  }
}

/** The decoder of a `Content-Encoding` the broker can read, else undefined (passed on as it is). */
export function decoderFor(encoding: string | undefined): Transform | undefined {
  switch ((encoding ?? 'identity').trim().toLowerCase()) {
    case 'identity':
    case '':
      return undefined
    case 'gzip':
    case 'x-gzip':
      return createGunzip()
    case 'deflate':
      return createInflate()
    case 'br':
      return createBrotliDecompress()
    default:
      return undefined
  }
}

function counter(onBytes: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      onBytes(chunk.length)
      done(null, chunk)
    },
  })
}

function failureOf(err: unknown): { status: number; code: ErrorCode; reason: string } {
  if (err instanceof UpstreamTimeout)
    return { status: 504, code: 'ERR_UPSTREAM_TIMEOUT', reason: 'the upstream did not answer in time' }
  if (err instanceof TooLarge)
    return {
      status: 502,
      code: 'ERR_UPSTREAM_TOO_LARGE',
      reason: "the upstream's answer is over the broker's size cap",
    }
  return { status: 502, code: 'ERR_UPSTREAM_UNAVAILABLE', reason: 'the upstream is unavailable' }
}

/**
 * Forwards an allowed request on its route: the route's credential injected, the caller's own
 * credentials and identity headers removed, the upstream's TLS verified, redirects passed back
 * (never followed). The answer comes back scrubbed of the credential, headers and body (decoded
 * first when the upstream compressed it anyway), its size capped. Upstream down → 502, no headers
 * in time → 504, too large → 502; every call is audited once its answer is over.
 */
export function forwardOnRoute(
  req: IncomingMessage,
  res: ServerResponse,
  route: Route,
  ctx: RouteContext,
  who: ForwardCaller,
): void {
  const { upstream } = route
  const target = upstreamTarget(route, req.url ?? '/')
  let bytesIn = 0
  let bytesOut = 0
  let isScrubbed = false
  let code: AuditCode = 'OK'
  let isAudited = false
  const audit = () => {
    if (isAudited) return
    isAudited = true
    ctx.audit.callForwarded({
      method: req.method ?? 'GET',
      host: upstream.host,
      path: target.logged,
      route: route.name,
      status: res.statusCode,
      bytesIn,
      bytesOut,
      scrubbed: isScrubbed,
      via: who.via,
      code,
      caller: who.caller,
      correlationId: who.correlationId,
    })
  }
  res.once('close', audit)
  const fail = (err: unknown) => {
    const failure = failureOf(err)
    if (code === 'OK') code = failure.code
    ctx.log.warn({ code: failure.code, route: route.name, host: upstream.host }, 'Upstream request failed.')
    if (!res.headersSent) writeRefusal(res, failure)
    else res.destroy()
  }
  const outgoing = request({
    host: upstream.hostname.replace(/^\[|\]$/g, ''),
    port: upstream.port === '' ? 443 : Number(upstream.port),
    servername: upstream.hostname,
    agent: ctx.agent,
    method: req.method,
    path: target.path,
    headers: upstreamHeaders(req.headers, upstream.host, route.injection),
  })
  const timer = setTimeout(() => outgoing.destroy(new UpstreamTimeout()), ctx.responseTimeoutMs)
  outgoing.once('close', () => clearTimeout(timer))
  outgoing.on('error', fail)
  outgoing.on('response', (answer) => {
    clearTimeout(timer)
    const declared = Number(answer.headers['content-length'] ?? 0)
    if (declared > ctx.maxResponseBytes) {
      answer.destroy()
      fail(new TooLarge())
      return
    }
    const decoder = decoderFor(answer.headers['content-encoding'])
    const head = callerHeaders(answer.headers, route.scrubber, decoder !== undefined)
    isScrubbed ||= head.isScrubbed
    res.writeHead(answer.statusCode ?? 502, head.headers)
    // An answer of unknown length (an event stream) gets its headers at once; one of known length
    // sends them with its first body bytes, in one write instead of two (as the gateway does).
    if (answer.headers['content-length'] === undefined) res.flushHeaders()
    let received = 0
    const capped = counter((n) => {
      received += n
      if (received <= ctx.maxResponseBytes) return
      // Set here, not when the pipeline rejects: destroying it closes `res`, whose audit may run first.
      code = 'ERR_UPSTREAM_TOO_LARGE'
      capped.destroy(new TooLarge())
    })
    const transforms: Transform[] = [capped, ...(decoder === undefined ? [] : [decoder])]
    transforms.push(
      route.scrubber.stream(() => {
        isScrubbed = true
      }),
      counter((n) => {
        bytesOut += n
      }),
    )
    pipeline([answer, ...transforms, res]).catch((err: unknown) => {
      if (err instanceof TooLarge) code = 'ERR_UPSTREAM_TOO_LARGE'
      else if (code === 'OK' && !res.writableFinished) code = 'ERR_UPSTREAM_UNAVAILABLE'
      res.destroy()
    })
  })
  res.on('close', () => {
    if (!res.writableFinished) outgoing.destroy()
  })
  req.on('data', (chunk: Buffer) => {
    bytesIn += chunk.length
  })
  req.pipe(outgoing)
}
