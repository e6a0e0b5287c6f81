import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { SpiffeId } from '../core/spiffe-id.js'
import type { AuthMethod } from './authenticate.js'
import { correlationIdOf, REQUEST_ID_HEADER } from './correlation-id.js'
import type { CredentialEnded, Guard, GuardAllowed, GuardCheckOptions, RequestProblem } from './guard.js'
import { type Refusal, writeRefusal, writeRefusalToSocket } from './refusal.js'
import { canonicalTarget } from './request-path.js'
import { endCutResponse, watchResponse } from './response-watch.js'

export { type Refusal, writeRefusal, writeRefusalToSocket } from './refusal.js'

/** The header that carries the verified caller's SPIFFE ID to the handler or upstream. */
export const IDENTITY_HEADER = 'x-tessera-spiffe-id'
/** The header that says how the caller authenticated: `jwt` or `mtls`. */
export const AUTH_METHOD_HEADER = 'x-tessera-auth-method'

/** The verified caller of a request the guard allowed. */
export interface VerifiedCaller {
  readonly id: SpiffeId
  readonly via: AuthMethod
}

/** Options of the middleware functions. */
export interface MiddlewareOptions {
  /** Reads the tools a request calls, for policies with `tools` rules (see `GuardCheckOptions`). */
  readonly readTools?: (req: IncomingMessage) => Promise<ReadonlyArray<string> | undefined>
  /** Reads the MCP methods a request calls, for policies with `mcpMethods` rules (see `GuardCheckOptions`). */
  readonly readMcpMethods?: (req: IncomingMessage) => Promise<ReadonlyArray<string> | undefined>
  /** Checks the request itself before the policy (see `GuardCheckOptions.inspectRequest`). */
  readonly inspectRequest?: (req: IncomingMessage) => Promise<RequestProblem | undefined>
  /**
   * Answers a refused request instead of the default `{ "error": code, "message": reason }` JSON
   * (`tessera gateway` answers an MCP call as a JSON-RPC error); the refusal is already audited.
   */
  readonly writeRefusal?: (
    req: IncomingMessage,
    res: ServerResponse,
    refusal: Refusal,
  ) => void | Promise<void>
  /**
   * Ends an allowed reply that is still open (a stream: SSE, chunked, a long download) when the
   * credential it was admitted with is revoked or expires (the cut is already audited). Default
   * {@link endCutResponse}: 401 before the headers, an event stream ended cleanly, anything else destroyed.
   */
  readonly cutResponse?: (req: IncomingMessage, res: ServerResponse, why: CredentialEnded) => void
  /** Told of a failure that is a bug, in the guard or the handler (the request is answered 500 if it still can be). */
  readonly onError?: (err: unknown, req: IncomingMessage) => void
}

const callers = new WeakMap<IncomingMessage, VerifiedCaller>()

/** True for headers that claim an identity: `x-tessera-*`, anything with `spiffe`, client-cert headers. */
function isIdentityHeader(name: string): boolean {
  const n = name.toLowerCase()
  return (
    n.startsWith('x-tessera-') ||
    n.includes('spiffe') ||
    n === 'x-forwarded-client-cert' ||
    n === 'x-client-cert'
  )
}

/**
 * Removes every identity-claiming header a client sent (`X-Tessera-*`, `X-Spiffe-Id` and anything
 * else naming SPIFFE, `X-Forwarded-Client-Cert`) from `headers` and `rawHeaders`.
 * @example
 * stripIdentityHeaders(req) // req.headers['x-spiffe-id'] is gone
 */
export function stripIdentityHeaders(req: Pick<IncomingMessage, 'headers' | 'rawHeaders'>): void {
  for (const name of Object.keys(req.headers)) if (isIdentityHeader(name)) delete req.headers[name]
  const raw = req.rawHeaders
  for (let i = raw.length - 2; i >= 0; i -= 2) if (isIdentityHeader(raw[i] ?? '')) raw.splice(i, 2)
}

/**
 * Strips client identity headers, then sets the verified caller's (headers and {@link callerOf})
 * and the request's correlation id (`X-Request-Id`, the id its audit lines carry: `correlationIdOf`),
 * and rewrites `req.url` to the canonical path the policy decided on (and the original query), so
 * that the handler, or the upstream, routes exactly that path.
 */
function admit(req: IncomingMessage, decision: GuardAllowed): void {
  req.url = canonicalTarget(decision.path, req.url)
  const correlationId = correlationIdOf(req)
  stripIdentityHeaders(req)
  const id = decision.id.toString()
  req.headers[IDENTITY_HEADER] = id
  req.headers[AUTH_METHOD_HEADER] = decision.via
  req.headers[REQUEST_ID_HEADER] = correlationId
  const raw = req.rawHeaders
  for (let i = raw.length - 2; i >= 0; i -= 2)
    if (raw[i]?.toLowerCase() === REQUEST_ID_HEADER) raw.splice(i, 2)
  raw.push('X-Tessera-Spiffe-Id', id, 'X-Tessera-Auth-Method', decision.via, 'X-Request-Id', correlationId)
  callers.set(req, { id: decision.id, via: decision.via })
}

/**
 * The verified caller of a request the guard middleware allowed; undefined otherwise.
 * @example
 * const caller = callerOf(req)
 * if (caller) console.log(`${caller.id} via ${caller.via}`)
 */
export function callerOf(req: IncomingMessage): VerifiedCaller | undefined {
  return callers.get(req)
}

const INTERNAL: Refusal = { status: 500, code: 'ERR_INTERNAL', reason: 'internal error' }

type Outcome = GuardAllowed | (Refusal & { readonly allowed: false })

async function decide(guard: Guard, req: IncomingMessage, options: MiddlewareOptions): Promise<Outcome> {
  const { readTools, readMcpMethods, inspectRequest } = options
  const checkOptions: GuardCheckOptions = {
    ...(readTools && { readTools: () => readTools(req) }),
    ...(readMcpMethods && { readMcpMethods: () => readMcpMethods(req) }),
    ...(inspectRequest && { inspectRequest: () => inspectRequest(req) }),
  }
  try {
    return await guard.check(req, checkOptions)
  } catch (err) {
    options.onError?.(err, req)
    return { allowed: false, ...INTERNAL }
  }
}

/**
 * Connect/Express-style middleware: allowed requests get `X-Tessera-Spiffe-Id` (client-sent
 * identity headers stripped first) and their canonical `url`, and go to `next()`; refused ones are
 * answered here. An allowed reply still open when the caller's credential (or task) is revoked or
 * expires is cut (`cutResponse`) and the cut audited (`GatewayAudit.streamCut`).
 * @example
 * app.use(guardMiddleware(guard))
 */
export function guardMiddleware(guard: Guard, options: MiddlewareOptions = {}) {
  return (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    decide(guard, req, options)
      .then(async (decision) => {
        if (!decision.allowed) {
          if (options.writeRefusal === undefined) writeRefusal(res, decision)
          else await options.writeRefusal(req, res, decision)
          return
        }
        admit(req, decision)
        const cut = options.cutResponse ?? ((_req, r, why) => endCutResponse(r, why))
        watchResponse(guard, { request: req, allowed: decision }, res, (why) => cut(req, res, why))
        // A credential admitted within the JWT leeway may already be past its expiry: the watch has
        // cut the reply then, and the handler must not start on an answered response.
        if (res.writableEnded || res.destroyed) return
        next()
      })
      .catch((err: unknown) => {
        options.onError?.(err, req)
        if (!res.headersSent) writeRefusal(res, INTERNAL)
        else res.destroy()
      })
  }
}

/**
 * Wraps an `http.createServer` request handler: it runs only for allowed requests, which carry
 * the verified caller in `X-Tessera-Spiffe-Id` and {@link callerOf}.
 * @example
 * http.createServer(guardRequests(guard, (req, res) => res.end(`hello ${req.headers['x-tessera-spiffe-id']}`)))
 */
export function guardRequests(
  guard: Guard,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  options: MiddlewareOptions = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  const middleware = guardMiddleware(guard, options)
  return (req, res) => middleware(req, res, () => handler(req, res))
}

/**
 * Wraps an `'upgrade'` listener (WebSocket): it runs only for allowed upgrades (and gets the
 * decision, whose `expiresAtMs` the WebSocket must not outlive and which `guard.checkMessage`
 * takes); refused ones are answered on the raw socket, which is then destroyed. Only
 * `Upgrade: websocket` is ever allowed. Works with `ws` in `noServer` mode.
 * @example
 * server.on('upgrade', guardUpgrades(guard, (req, socket, head) =>
 *   wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req))))
 */
export function guardUpgrades(
  guard: Guard,
  handler: (req: IncomingMessage, socket: Duplex, head: Buffer, decision: GuardAllowed) => void,
  options: MiddlewareOptions = {},
): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    socket.on('error', () => socket.destroy())
    decide(guard, req, options)
      .then((decision) => {
        if (!decision.allowed) return writeRefusalToSocket(socket, decision)
        admit(req, decision)
        handler(req, socket, head, decision)
      })
      .catch((err: unknown) => {
        options.onError?.(err, req)
        socket.destroy()
      })
  }
}
