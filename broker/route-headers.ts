import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import { withoutHopByHop } from '../common/http/hop-by-hop.js'
import type { Injection } from './broker-routes.js'
import type { Scrubber } from './scrubber.js'

/**
 * What a caller sends that must not reach a third-party upstream: its own credentials (the broker
 * injects the route's), what it says about its identity and where it came from, and the encodings
 * it accepts (the broker asks for `identity`, so the answer can be scrubbed).
 */
const CALLER_OWNED: ReadonlySet<string> = new Set([
  'authorization',
  'cookie',
  'txn-token',
  'workload-identity-token',
  'workload-proof-token',
  'tessera-caller-token',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-real-ip',
  'x-request-id',
  'accept-encoding',
  'host',
])

/**
 * The headers the broker sends upstream: the caller's, minus hop-by-hop headers, its credentials,
 * identity and forwarding headers (`X-Tessera-*`, anything naming SPIFFE), plus the upstream's own
 * `Host`, `Accept-Encoding: identity` and the route's credential (a header the caller sent with
 * the same name is replaced, never doubled).
 * @example
 * upstreamHeaders(req.headers, 'api.github.com', { kind: 'header', name: 'authorization', value: 'Bearer …' })
 */
export function upstreamHeaders(
  headers: IncomingHttpHeaders,
  host: string,
  injection: Injection,
): OutgoingHttpHeaders {
  const out = withoutHopByHop(
    headers,
    (name) => CALLER_OWNED.has(name) || name.startsWith('x-tessera-') || name.includes('spiffe'),
  )
  out['host'] = host
  out['accept-encoding'] = 'identity'
  if (injection.kind === 'header') out[injection.name] = injection.value
  return out
}

/**
 * The upstream answer's headers for the caller: hop-by-hop headers and `Content-Length` dropped
 * (scrubbing may change the length; Node frames the body again), `Content-Encoding` dropped when the
 * broker decoded the body, and every value scrubbed. Returns whether a value was.
 */
export function callerHeaders(
  headers: IncomingHttpHeaders,
  scrubber: Scrubber,
  isDecoded: boolean,
): { headers: OutgoingHttpHeaders; isScrubbed: boolean } {
  let isScrubbed = false
  const scrub = (text: string) => {
    const result = scrubber.scrubText(text)
    isScrubbed ||= result.isChanged
    return result.text
  }
  const kept = withoutHopByHop(
    headers,
    (name) => name === 'content-length' || (isDecoded && name === 'content-encoding'),
  )
  const out: OutgoingHttpHeaders = {}
  for (const [name, value] of Object.entries(kept))
    if (value !== undefined) out[name] = Array.isArray(value) ? value.map(scrub) : scrub(String(value))
  return { headers: out, isScrubbed }
}
