import { isIPv4, isIPv6 } from 'node:net'
import { IdentityError } from '../core/errors.js'

/**
 * The environment variable that names the Workload API endpoint (spec §3).
 * @example
 * const address = env[ENDPOINT_SOCKET_ENV] // 'unix:///run/tessera/api.sock'
 */
export const ENDPOINT_SOCKET_ENV = 'SPIFFE_ENDPOINT_SOCKET'

/** Longest Unix socket path Linux accepts (`sun_path` is 108 bytes with the trailing NUL). */
const MAX_SOCKET_PATH_BYTES = 107

/**
 * Where a Workload API is served: a Unix socket (preferred) or a TCP address (spec §3).
 * @example
 * const endpoint: WorkloadEndpoint = parseWorkloadEndpoint('tcp://[::1]:8000')
 * if (endpoint.transport === 'tcp') console.log(endpoint.host, endpoint.port) // ::1 8000
 */
export type WorkloadEndpoint =
  | Readonly<{
      transport: 'unix'
      /** Absolute path of the socket. */
      path: string
      /** The canonical address, `unix:///abs/path`. */
      uri: string
      /** The grpc-js channel target. */
      grpcTarget: string
    }>
  | Readonly<{
      transport: 'tcp'
      /** An IP literal (IPv6 without brackets). */
      host: string
      port: number
      /** The canonical address, `tcp://1.2.3.4:5` or `tcp://[::1]:5`. */
      uri: string
      /** The grpc-js channel target, `ipv4:1.2.3.4:5` or `ipv6:[::1]:5`. */
      grpcTarget: string
    }>

/** RFC 3986 appendix B: scheme, authority (when `//` is there), path, query, fragment. */
const URI_PARTS = /^(?:([^:/?#]+):)?(?:\/\/([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$/s
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*$/
const PORT = /^[0-9]{1,5}$/
/** Control characters and spaces never appear in a URI. */
function hasForbiddenChar(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c <= 0x20 || c === 0x7f) return true
  }
  return false
}

function invalid(message: string, cause?: unknown): IdentityError {
  return new IdentityError('ERR_ENDPOINT_INVALID', `workload endpoint ${message}`, { cause })
}

interface UriParts {
  readonly scheme: string | undefined
  readonly authority: string | undefined
  readonly path: string
  readonly query: string | undefined
  readonly fragment: string | undefined
}

function splitUri(address: string): UriParts {
  const m = URI_PARTS.exec(address)
  if (m === null || hasForbiddenChar(address)) throw invalid('address is not a valid URI')
  const [, scheme, authority, path = '', query, fragment] = m
  if (scheme !== undefined && !SCHEME.test(scheme)) throw invalid('address is not a valid URI')
  return { scheme: scheme?.toLowerCase(), authority, path, query, fragment }
}

function unixEndpoint(path: string): WorkloadEndpoint {
  if (path.includes('\0')) throw invalid('socket path must not contain a NUL byte')
  if (!path.startsWith('/') || path === '/') throw invalid('socket path must be an absolute path to a socket')
  const bytes = Buffer.byteLength(path)
  if (bytes > MAX_SOCKET_PATH_BYTES)
    throw invalid(`socket path must be at most ${MAX_SOCKET_PATH_BYTES} bytes, not ${bytes}`)
  const uri = `unix://${path}`
  return Object.freeze({ transport: 'unix', path, uri, grpcTarget: uri })
}

function decodePath(path: string): string {
  try {
    return decodeURIComponent(path)
  } catch (err) {
    throw invalid('unix socket URI has a malformed percent-encoding', err)
  }
}

/** `unix:///abs/path` or `unix:/abs/path`: no authority, query or fragment (spec §3, java-spiffe's rule). */
function parseUnix(parts: UriParts): WorkloadEndpoint {
  if (parts.authority !== undefined && parts.authority !== '')
    throw invalid('unix socket URI must not have an authority: write unix:///absolute/path')
  if (parts.query !== undefined) throw invalid('unix socket URI must not include a query')
  if (parts.fragment !== undefined) throw invalid('unix socket URI must not include a fragment')
  if (parts.path === '') throw invalid('unix socket URI must include a path')
  if (!parts.path.startsWith('/'))
    throw invalid('unix socket URI must not be opaque: write unix:///absolute/path')
  return unixEndpoint(decodePath(parts.path))
}

function splitHostPort(authority: string): { host: string; port: string | undefined } {
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']')
    const rest = end < 0 ? '' : authority.slice(end + 1)
    if (end < 0 || (rest !== '' && !rest.startsWith(':'))) throw invalid('tcp URI host is malformed')
    return { host: authority.slice(1, end), port: rest === '' ? undefined : rest.slice(1) }
  }
  const colon = authority.lastIndexOf(':')
  if (colon < 0) return { host: authority, port: undefined }
  return { host: authority.slice(0, colon), port: authority.slice(colon + 1) }
}

function checkTcpParts(parts: UriParts): string {
  const authority = parts.authority
  if (authority === undefined) throw invalid('tcp URI must not be opaque: write tcp://IP:port')
  if (authority.includes('@')) throw invalid('tcp URI must not include user info')
  if (authority === '') throw invalid('tcp URI must include a host')
  if (parts.path !== '') throw invalid('tcp URI must not include a path')
  if (parts.query !== undefined) throw invalid('tcp URI must not include a query')
  if (parts.fragment !== undefined) throw invalid('tcp URI must not include a fragment')
  return authority
}

/** `tcp://IP:port`: an IP literal (IPv6 in brackets) and a port, nothing else (spec §3). */
function parseTcp(parts: UriParts): WorkloadEndpoint {
  const bracketed = checkTcpParts(parts).startsWith('[')
  const { host, port } = splitHostPort(parts.authority ?? '')
  const isV4 = !bracketed && isIPv4(host)
  const isV6 = bracketed && isIPv6(host) && !host.includes('%')
  if (!isV4 && !isV6) throw invalid('tcp URI host must be an IP address (IPv6 in brackets)')
  if (port === undefined || port === '') throw invalid('tcp URI must include a port')
  const portNumber = Number(port)
  if (!PORT.test(port) || portNumber < 1 || portNumber > 65_535)
    throw invalid('tcp URI port must be a number from 1 to 65535')
  const hostPort = isV6 ? `[${host}]:${portNumber}` : `${host}:${portNumber}`
  return Object.freeze({
    transport: 'tcp',
    host,
    port: portNumber,
    uri: `tcp://${hostPort}`,
    grpcTarget: `${isV6 ? 'ipv6' : 'ipv4'}:${hostPort}`,
  })
}

/**
 * Parses a Workload API endpoint address (spec §3): `unix:///abs/path` (also `unix:/abs/path`; no
 * authority, query or fragment), `tcp://IP:port` (an IP literal, IPv6 in brackets, and a port from 1
 * to 65535; nothing else), or — for convenience — a plain absolute socket path. Stricter than
 * go-spiffe in two places, both per the spec: `unix://host/path` is refused (an authority), and so
 * is an unbracketed IPv6 host. The scheme is case-insensitive.
 * @throws ERR_ENDPOINT_INVALID
 * @example
 * parseWorkloadEndpoint('unix:///run/tessera/api.sock').grpcTarget // 'unix:///run/tessera/api.sock'
 * parseWorkloadEndpoint('/run/tessera/api.sock').uri // 'unix:///run/tessera/api.sock'
 * parseWorkloadEndpoint('tcp://127.0.0.1:8000').grpcTarget // 'ipv4:127.0.0.1:8000'
 */
export function parseWorkloadEndpoint(address: string): WorkloadEndpoint {
  if (typeof address !== 'string' || address === '') throw invalid('address is empty')
  if (address.startsWith('/')) return unixEndpoint(address)
  const parts = splitUri(address)
  switch (parts.scheme) {
    case 'unix':
      return parseUnix(parts)
    case 'tcp':
      return parseTcp(parts)
    case undefined:
      throw invalid('address must be unix:///path, tcp://IP:port or an absolute socket path')
    default:
      throw invalid('URI must have a "unix" or "tcp" scheme')
  }
}

/**
 * The endpoint a library client uses when it is given none: `SPIFFE_ENDPOINT_SOCKET` (spec §3).
 * @throws ERR_ENDPOINT_INVALID when the variable is unset or malformed
 * @example
 * const endpoint = loadWorkloadEndpointFromEnv() // from process.env.SPIFFE_ENDPOINT_SOCKET
 */
export function loadWorkloadEndpointFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
): WorkloadEndpoint {
  const value = env[ENDPOINT_SOCKET_ENV]
  if (value === undefined || value === '')
    throw new IdentityError(
      'ERR_ENDPOINT_INVALID',
      `no Workload API endpoint: pass one or set ${ENDPOINT_SOCKET_ENV} (unix:///path/to/api.sock)`,
    )
  return parseWorkloadEndpoint(value)
}
