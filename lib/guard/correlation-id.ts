import { randomUUID } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'

/** The header the correlation id is passed to the upstream (or handler) in. */
export const REQUEST_ID_HEADER = 'x-request-id'

/** Longest `X-Request-Id` taken from a caller; a longer one is replaced by a fresh id. */
export const MAX_REQUEST_ID_LENGTH = 128

/** W3C Trace Context `traceparent`: version, trace id, parent id, flags (a later version may add fields). */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/
const ZERO_TRACE_ID = '0'.repeat(32)
const ZERO_PARENT_ID = '0'.repeat(16)
/** Printable, no spaces, quotes, commas or backslashes: safe in a header, a log line and a search. */
const REQUEST_ID = /^[A-Za-z0-9._:@/+=-]+$/

const ids = new WeakMap<object, string>()

/** The trace id of a valid `traceparent` header value, else undefined. */
export function traceIdOf(value: string | undefined): string | undefined {
  const m = value === undefined ? null : TRACEPARENT.exec(value.trim())
  if (m === null) return undefined
  const [, version, traceId, parentId, , rest] = m
  if (version === 'ff' || traceId === ZERO_TRACE_ID || parentId === ZERO_PARENT_ID) return undefined
  if (version === '00' && rest !== undefined) return undefined
  return traceId
}

/** A caller's `X-Request-Id` when it is one short token of safe characters, else undefined. */
export function requestIdOf(value: string | ReadonlyArray<string> | undefined): string | undefined {
  if (typeof value !== 'string') return undefined
  const id = value.trim()
  return id.length <= MAX_REQUEST_ID_LENGTH && REQUEST_ID.test(id) ? id : undefined
}

/**
 * The id that follows one request through the audit lines of the guard and the services behind it:
 * the trace id of the caller's W3C `traceparent`, else its `X-Request-Id`, each only when valid
 * (well-formed, at most {@link MAX_REQUEST_ID_LENGTH} safe characters), else a fresh random UUID. The
 * same request always gets the same id. A caller chooses its own id: it links lines, it proves nothing.
 * @example
 * const id = correlationIdOf(req) // '4bf92f3577b34da6a3ce929d0e0e4736'
 */
export function correlationIdOf(request: { readonly headers: IncomingHttpHeaders }): string {
  let id = ids.get(request)
  if (id === undefined) {
    const traceparent = request.headers.traceparent
    id =
      traceIdOf(typeof traceparent === 'string' ? traceparent : undefined) ??
      requestIdOf(request.headers[REQUEST_ID_HEADER]) ??
      randomUUID()
    ids.set(request, id)
  }
  return id
}

/**
 * Makes `id` the request's correlation id from now on (the guard binds a request that acts for a task
 * to its task id): what {@link correlationIdOf} returns for it, and so its audit lines and
 * `X-Request-Id`. A caller cannot choose it: only a valid task token sets it.
 * @example
 * bindCorrelationId(req, task.taskId)
 */
export function bindCorrelationId(request: { readonly headers: IncomingHttpHeaders }, id: string): void {
  ids.set(request, id)
}
