import { lookup } from 'node:dns/promises'
import {
  type IncomingMessage,
  type OutgoingHttpHeaders,
  request,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http'
import { connect, isIP, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import { withoutHopByHop } from '../common/http/hop-by-hop.js'
import type { AuditCaller, CallAllowed, CallDenied, CallForwarded } from '../common/log/audit-log.js'
import { localPeerKey } from '../common/peercred/sock-diag.js'
import type { ErrorCode } from '../lib/core/errors.js'
import type { SpiffeId } from '../lib/core/spiffe-id.js'
import type { FailureThrottle } from '../lib/guard/throttle.js'
import { type EgressRule, normalizeHostPort } from './broker-routes.js'
import { CALLER_TOKEN_HEADER } from './caller-token.js'
import { answerAttached, withCallerToken } from './egress-attach.js'
import { type EgressAuthDeps, identifyProxyCaller } from './egress-auth.js'

/** What the forward proxy needs. */
export interface EgressContext {
  readonly rules: ReadonlyArray<EgressRule>
  readonly auth: EgressAuthDeps
  readonly throttle: FailureThrottle
  readonly audit: {
    callAllowed(e: CallAllowed): void
    callDenied(e: CallDenied): void
    callForwarded(e: CallForwarded): void
  }
  readonly log: Logger
  /** How long connecting to a host may take. */
  readonly connectTimeoutMs: number
}

interface Refusal {
  readonly status: 400 | 403 | 407 | 429 | 502 | 504
  readonly code: ErrorCode
  readonly reason: string
  readonly retryAfterSeconds?: number
}

/** A decided forward-proxy request: the caller and where it goes, or why not. */
export type Decision =
  | {
      readonly allowed: true
      readonly id: SpiffeId
      readonly via: string
      readonly taskId?: string
      /** The target is a Tessera gateway of this audience: the caller's own token is presented. */
      readonly attachAudience?: string
    }
  | (Refusal & { readonly allowed: false; readonly id?: SpiffeId })

function head(refusal: Refusal): string {
  const body = JSON.stringify({ error: refusal.code, message: refusal.reason })
  const lines = [
    `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status] ?? ''}`,
    'content-type: application/json',
    `content-length: ${Buffer.byteLength(body)}`,
    'connection: close',
    ...(refusal.status === 407 ? ['proxy-authenticate: Bearer realm="tessera-broker"'] : []),
    ...(refusal.retryAfterSeconds === undefined ? [] : [`retry-after: ${refusal.retryAfterSeconds}`]),
  ]
  return `${lines.join('\r\n')}\r\n\r\n${body}`
}

export function callerOf(decision: Decision, socket: Socket): AuditCaller {
  const address = socket.remoteAddress ?? 'unknown'
  return decision.id === undefined
    ? { kind: 'remote', address }
    : { kind: 'svid', spiffeId: decision.id.toString(), address }
}

/** Audits one forward-proxy decision: `call.allowed` / `call.denied`, resource `host:port`. */
function record(ctx: EgressContext, method: string, target: string, decision: Decision, socket: Socket) {
  const common = {
    method,
    resource: target,
    caller: callerOf(decision, socket),
    ...(decision.allowed && { via: decision.via }),
    ...(decision.allowed && decision.taskId !== undefined && { correlationId: decision.taskId }),
  }
  if (decision.allowed) ctx.audit.callAllowed(common)
  else ctx.audit.callDenied({ ...common, code: decision.code, reason: decision.reason })
}

/** The caller's identity, then the allowlist: exactly `host:port` listed for a pattern its ID matches. */
async function decide(
  ctx: EgressContext,
  req: IncomingMessage,
  target: string | undefined,
): Promise<Decision> {
  const key = localPeerKey(req.socket)
  const blocked = ctx.throttle.check(key)
  if (blocked.isBlocked) {
    const retryAfterSeconds = Math.max(1, Math.ceil(blocked.retryAfterMs / 1000))
    const reason = `too many failed authentications from ${key}: refused for ${retryAfterSeconds} s`
    return { allowed: false, status: 429, code: 'ERR_THROTTLED', reason, retryAfterSeconds }
  }
  const who = await identifyProxyCaller(req.headers, req.socket, ctx.auth)
  if (who.kind === 'missing')
    return { allowed: false, status: 407, code: 'ERR_PROXY_AUTH_MISSING', reason: who.reason }
  if (who.kind === 'failed') {
    ctx.throttle.recordFailure(key)
    return { allowed: false, status: 407, code: who.code, reason: who.reason }
  }
  if (target === undefined)
    return {
      allowed: false,
      status: 400,
      code: 'ERR_REQUEST_INVALID',
      reason: 'the target must be host:port',
      id: who.id,
    }
  const id = who.id.toString()
  const rule = ctx.rules.find((r) => r.hosts.has(target) && r.ids.some((m) => m(id)))
  if (rule === undefined)
    return {
      allowed: false,
      status: 403,
      code: 'ERR_EGRESS_REFUSED',
      reason: `${target} is not on the egress allowlist of ${id}`,
      id: who.id,
    }
  return {
    allowed: true,
    id: who.id,
    via: who.via,
    ...(who.taskId !== undefined && { taskId: who.taskId }),
    ...(rule.attachAudience !== undefined && { attachAudience: rule.attachAudience }),
  }
}

function normalized(hostPort: string): string | undefined {
  try {
    return normalizeHostPort(hostPort)
  } catch {
    return undefined
  }
}

/**
 * The address to connect to: an IP literal as it is, a name resolved once here, so the connection
 * goes to the address resolved now and no later lookup (DNS rebinding) can send it elsewhere.
 */
async function resolveOnce(target: string): Promise<{ address: string; port: number }> {
  const at = target.lastIndexOf(':')
  const host = target.slice(0, at).replace(/^\[|\]$/g, '')
  const port = Number(target.slice(at + 1))
  if (isIP(host) !== 0) return { address: host, port }
  const { address } = await lookup(host)
  return { address, port }
}

function connectTo(ctx: EgressContext, address: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address, port })
    socket.setTimeout(ctx.connectTimeoutMs, () => socket.destroy(new Error('connect timeout')))
    socket.once('connect', () => {
      socket.setTimeout(0)
      resolve(socket)
    })
    socket.once('error', reject)
  })
}

/**
 * Answers `CONNECT host:port` (HTTPS_PROXY): the caller identified by `Proxy-Authorization`, the
 * target on its allowlist, the host resolved once and the tunnel opened to that address. Refusals
 * are 407 (no identity, with `Proxy-Authenticate`), 403 (not listed), 429 or 502; all audited.
 */
export function handleConnect(ctx: EgressContext) {
  return (req: IncomingMessage, socket: Duplex, headBytes: Buffer): void => {
    socket.on('error', () => socket.destroy())
    const target = normalized(req.url ?? '')
    const run = async () => {
      const decision = await decide(ctx, req, target)
      record(ctx, 'CONNECT', target ?? (req.url ?? '').slice(0, 200), decision, req.socket)
      if (!decision.allowed || target === undefined) {
        if (!decision.allowed) socket.end(head(decision))
        return
      }
      let upstream: Socket
      try {
        const { address, port } = await resolveOnce(target)
        upstream = await connectTo(ctx, address, port)
      } catch (err) {
        ctx.log.warn({ err, target }, 'Egress connection failed.')
        socket.end(
          head({ status: 502, code: 'ERR_UPSTREAM_UNAVAILABLE', reason: `${target} cannot be reached` }),
        )
        return
      }
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      if (headBytes.length > 0) upstream.write(headBytes)
      upstream.on('error', () => socket.destroy())
      socket.on('close', () => upstream.destroy())
      upstream.on('close', () => socket.destroy())
      socket.pipe(upstream)
      upstream.pipe(socket)
    }
    run().catch((err: unknown) => {
      ctx.log.error({ err }, 'The forward proxy failed on a CONNECT.')
      socket.destroy()
    })
  }
}

function writeRefusal(res: ServerResponse, refusal: Refusal): void {
  const body = JSON.stringify({ error: refusal.code, message: refusal.reason })
  const headers: OutgoingHttpHeaders = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  }
  if (refusal.status === 407) headers['proxy-authenticate'] = 'Bearer realm="tessera-broker"'
  if (refusal.retryAfterSeconds !== undefined) headers['retry-after'] = String(refusal.retryAfterSeconds)
  res.writeHead(refusal.status, headers)
  res.end(body)
}

/**
 * The headers sent on: the caller's minus hop-by-hop ones and any `Tessera-Caller-Token` (for the
 * broker alone); to a Tessera gateway, the caller's own `Authorization` replaced by its attached
 * token, and `Accept-Encoding: identity` so that the answer can be scrubbed of that token.
 */
function forwardHeaders(
  req: IncomingMessage,
  host: string,
  attached: string | undefined,
): OutgoingHttpHeaders {
  const out = withoutHopByHop(req.headers, (name) => name === CALLER_TOKEN_HEADER)
  out['host'] = host
  if (attached !== undefined) {
    out['authorization'] = `Bearer ${attached}`
    out['accept-encoding'] = 'identity'
  }
  return out
}

/** The `host:port` of an absolute-form `http://` target; undefined for anything else. */
function httpTarget(url: URL): string | undefined {
  if (url.protocol !== 'http:' || url.username !== '' || url.password !== '') return undefined
  return normalized(`${url.hostname}:${url.port === '' ? 80 : url.port}`)
}

/**
 * Answers a plain-HTTP forward-proxy request (absolute-form `GET http://host/path`): decided and
 * audited as a CONNECT is, then sent to the address resolved once, without the caller's
 * `Proxy-Authorization`. An `https://` absolute target is refused: HTTPS goes through CONNECT.
 */
export function handleAbsoluteRequest(ctx: EgressContext, req: IncomingMessage, res: ServerResponse): void {
  let url: URL | undefined
  try {
    url = new URL(req.url ?? '')
  } catch {
    url = undefined
  }
  const target = url === undefined ? undefined : httpTarget(url)
  const run = async () => {
    const { decision, token } = await withCallerToken(ctx, req, await decide(ctx, req, target))
    // A call to a gateway is audited once answered (call.forwarded, attached: caller).
    if (token === undefined)
      record(ctx, req.method ?? 'GET', target ?? (req.url ?? '').slice(0, 200), decision, req.socket)
    if (!decision.allowed) return writeRefusal(res, decision)
    if (url === undefined || target === undefined) return
    let address: { address: string; port: number }
    try {
      address = await resolveOnce(target)
    } catch {
      return writeRefusal(res, {
        status: 502,
        code: 'ERR_UPSTREAM_UNAVAILABLE',
        reason: `${target} cannot be resolved`,
      })
    }
    const outgoing = request({
      host: address.address,
      port: address.port,
      method: req.method,
      path: `${url.pathname}${url.search}`,
      headers: forwardHeaders(req, url.host, token),
      agent: false,
    })
    outgoing.on('response', (answer) => {
      if (token !== undefined)
        return answerAttached(ctx, req, res, answer, {
          url,
          token,
          decision,
          caller: callerOf(decision, req.socket),
        })
      res.writeHead(answer.statusCode ?? 502, withoutHopByHop(answer.headers))
      answer.pipe(res)
    })
    outgoing.on('error', () => {
      if (!res.headersSent)
        writeRefusal(res, {
          status: 502,
          code: 'ERR_UPSTREAM_UNAVAILABLE',
          reason: `${target} cannot be reached`,
        })
      else res.destroy()
    })
    req.pipe(outgoing)
  }
  run().catch((err: unknown) => {
    ctx.log.error({ err }, 'The forward proxy failed on a request.')
    if (!res.headersSent)
      writeRefusal(res, { status: 502, code: 'ERR_UPSTREAM_UNAVAILABLE', reason: 'internal error' })
    else res.destroy()
  })
}
