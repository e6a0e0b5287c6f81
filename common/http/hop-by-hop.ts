import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'

/** Headers about one connection (RFC 9110 §7.6.1): a proxy never forwards them as they are. */
const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
])

/** The names listed in `Connection` (they are hop-by-hop too). */
function connectionTokens(headers: IncomingHttpHeaders): Set<string> {
  const value = headers.connection
  const text = Array.isArray(value) ? value.join(',') : (value ?? '')
  return new Set(
    text
      .split(',')
      .map((t) => t.trim().toLowerCase())
      .filter((t) => t.length > 0),
  )
}

/**
 * The headers a proxy passes on from one hop to the next: `headers` without the hop-by-hop ones,
 * those the `Connection` header names, and those `drop` picks (by lower-case name), each value as
 * it came.
 * @example
 * res.writeHead(upstream.statusCode ?? 502, withoutHopByHop(upstream.headers))
 */
export function withoutHopByHop(
  headers: IncomingHttpHeaders,
  drop: (name: string) => boolean = () => false,
): OutgoingHttpHeaders {
  const listed = connectionTokens(headers)
  const out: OutgoingHttpHeaders = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || listed.has(name) || drop(name)) continue
    out[name] = value
  }
  return out
}
