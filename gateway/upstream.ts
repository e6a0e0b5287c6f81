import { isAbsolute } from 'node:path'
import { IdentityError } from '../lib/core/errors.js'

/** Where the gateway forwards allowed requests: a tool's Unix socket, or a plain HTTP address. */
export type UpstreamTarget =
  | Readonly<{ transport: 'unix'; path: string; uri: string }>
  | Readonly<{ transport: 'http'; host: string; port: number; uri: string }>

/** Longest Unix socket path Linux accepts (`sun_path` is 108 bytes with the trailing NUL). */
const MAX_SOCKET_PATH_BYTES = 107

function invalid(message: string): IdentityError {
  return new IdentityError('ERR_CONFIG_INVALID', message)
}

function parseUnix(text: string): UpstreamTarget {
  const path = text.slice('unix://'.length)
  if (!isAbsolute(path) || path.includes('\0')) throw invalid('must be unix:///absolute/path/to.sock')
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES)
    throw invalid(`socket path must be at most ${MAX_SOCKET_PATH_BYTES} bytes`)
  return Object.freeze({ transport: 'unix', path, uri: `unix://${path}` })
}

function parseHttp(text: string): UpstreamTarget {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw invalid('must be unix:///path or http://host:port')
  }
  const isBare = (url.pathname === '/' || url.pathname === '') && url.search === '' && url.hash === ''
  if (url.username !== '' || url.password !== '' || !isBare || url.hostname === '')
    throw invalid('must be http://host:port, without credentials, path or query')
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
  const port = url.port === '' ? 80 : Number(url.port)
  return Object.freeze({ transport: 'http', host, port, uri: `http://${url.host}` })
}

/**
 * Parses an upstream address: `unix:///abs/path/tool.sock` (the tool's Unix socket) or
 * `http://host:port` (no path, no credentials). HTTPS upstreams are not offered: the gateway
 * fronts local tools.
 * @throws ERR_CONFIG_INVALID
 * @example
 * parseUpstream('unix:///run/tool/tool.sock') // { transport: 'unix', path: '/run/tool/tool.sock', … }
 */
export function parseUpstream(text: string): UpstreamTarget {
  if (typeof text !== 'string' || text.length === 0) throw invalid('must be a non-empty string')
  if (text.startsWith('unix://')) return parseUnix(text)
  if (text.startsWith('http://')) return parseHttp(text)
  throw invalid('must be unix:///path or http://host:port')
}

/**
 * The `http.request` options that reach a target.
 * @example
 * http.request({ ...connectOptions(target), method: 'GET', path: '/' })
 */
export function connectOptions(
  target: UpstreamTarget,
): { socketPath: string } | { host: string; port: number } {
  return target.transport === 'unix' ? { socketPath: target.path } : { host: target.host, port: target.port }
}

/**
 * The `Host` the gateway sends a target: the authority of an `http://` upstream as configured
 * (`127.0.0.1:9000`), `localhost` for a Unix socket (what curl's `--unix-socket` sends too).
 * @example
 * upstreamHost(parseUpstream('http://127.0.0.1:9000')) // '127.0.0.1:9000'
 */
export function upstreamHost(target: UpstreamTarget): string {
  return target.transport === 'unix' ? 'localhost' : target.uri.slice('http://'.length)
}
