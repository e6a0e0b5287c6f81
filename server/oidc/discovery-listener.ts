import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { Logger } from 'pino'
import type { JwtBundle } from '../../lib/core/bundle/jwt-bundle.js'
import { IdentityError } from '../../lib/core/errors.js'
import { CONFIGURATION_PATH, discoveryDocument, KEYS_PATH, publicJwks } from './discovery-documents.js'

/**
 * How long relying parties may cache a document. A prepared key is published for hours before it
 * signs (from half to five sixths of a CA's life), so five minutes of staleness never hides a key
 * in use; relying parties that meet an unknown `kid` refetch anyway.
 */
export const DISCOVERY_MAX_AGE_SECONDS = 300

/** What the listener serves and where. */
export interface DiscoveryListenerOptions {
  /** The issuer URL published and put in JWT-SVIDs; its path prefixes both documents. */
  readonly issuer: string
  readonly address: string
  /** 0 picks a free port. */
  readonly port: number
  /** PEM files for the issuer's host; absent: plain HTTP (the operator chose a TLS terminator). */
  readonly tls?: { readonly certPath: string; readonly keyPath: string } | undefined
  /** The trust domain's own JWT bundle now (it follows rotation). */
  readonly jwtBundle: () => JwtBundle
  readonly log: Logger
}

/** A running discovery listener. */
export interface DiscoveryListener {
  readonly port: number
  readonly url: string
  close(): Promise<void>
}

/**
 * Serves OIDC discovery for the trust domain's JWT-SVID keys: `GET|HEAD <issuer path>` +
 * `/.well-known/openid-configuration` and `/keys`. Other paths get 404, other methods 405, and a
 * `Host` other than the issuer's host 400 (so the documents are only served under the name they
 * publish, as SPIRE's provider checks its domains). Nothing in a request is echoed back.
 * @throws ERR_CONFIG_INVALID when the TLS files cannot be read or do not form a key pair;
 *   ERR_ADDRESS_IN_USE when the port is taken
 */
export async function startDiscoveryListener(options: DiscoveryListenerOptions): Promise<DiscoveryListener> {
  const handler = (req: IncomingMessage, res: ServerResponse) => handle(options, req, res)
  const server =
    options.tls === undefined
      ? createHttpServer(handler)
      : createHttpsServer(await tlsOptions(options.tls), handler)
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new IdentityError('ERR_ADDRESS_IN_USE', `OIDC discovery port ${options.port} is already in use`)
          : err,
      ),
    )
    server.listen(options.port, options.address, () => resolve())
  })
  const port = (server.address() as AddressInfo).port
  const scheme = options.tls === undefined ? 'http' : 'https'
  const host = options.address.includes(':') ? `[${options.address}]` : options.address
  return {
    port,
    url: `${scheme}://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

async function tlsOptions(files: {
  certPath: string
  keyPath: string
}): Promise<{ cert: Buffer; key: Buffer }> {
  const read = async (path: string, what: string) => {
    try {
      return await readFile(path)
    } catch (err) {
      throw new IdentityError('ERR_CONFIG_INVALID', `oidcTls${what}: ${path} cannot be read`, { cause: err })
    }
  }
  const cert = await read(files.certPath, 'Cert')
  const key = await read(files.keyPath, 'Key')
  try {
    const { createSecureContext } = await import('node:tls')
    createSecureContext({ cert, key })
  } catch (err) {
    throw new IdentityError(
      'ERR_CONFIG_INVALID',
      'oidcTlsCert and oidcTlsKey: not a PEM certificate chain and its private key',
      { cause: err },
    )
  }
  return { cert, key }
}

function handle(options: DiscoveryListenerOptions, req: IncomingMessage, res: ServerResponse): void {
  const refusal = refusalFor(options.issuer, req)
  if (refusal !== undefined) {
    if (refusal.status === 405) res.setHeader('Allow', 'GET, HEAD')
    sendError(res, refusal.status, refusal.error)
    return
  }
  let jwks: ReturnType<typeof publicJwks>
  try {
    jwks = publicJwks(options.jwtBundle())
  } catch (err) {
    options.log.warn({ err }, 'OIDC discovery has no bundle to serve yet.')
    sendError(res, 503, 'not_ready')
    return
  }
  const isKeys = pathOf(req) === `${issuerPrefix(options.issuer)}${KEYS_PATH}`
  sendJson(req, res, JSON.stringify(isKeys ? jwks : discoveryDocument(options.issuer, jwks)))
}

/** The issuer URL's path without a trailing `/` (empty for a bare host). */
function issuerPrefix(issuer: string): string {
  const path = new URL(issuer).pathname
  return path === '/' ? '' : path
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? '').split('?')[0] ?? ''
}

/** Why a request gets no document: a foreign `Host` (400), another path (404), another method (405). */
function refusalFor(issuer: string, req: IncomingMessage): { status: number; error: string } | undefined {
  if (!hostMatches(req.headers.host, new URL(issuer).hostname))
    return { status: 400, error: 'host_not_allowed' }
  const prefix = issuerPrefix(issuer)
  const path = pathOf(req)
  if (path !== `${prefix}${CONFIGURATION_PATH}` && path !== `${prefix}${KEYS_PATH}`)
    return { status: 404, error: 'not_found' }
  if (req.method !== 'GET' && req.method !== 'HEAD') return { status: 405, error: 'method_not_allowed' }
  return undefined
}

/** The `Host` header's name (port and letter case aside) is the issuer's host. */
function hostMatches(header: string | undefined, expected: string): boolean {
  if (header === undefined) return false
  const name = header.startsWith('[') ? header.slice(0, header.indexOf(']') + 1) : header.replace(/:\d*$/, '')
  return name.toLowerCase() === expected.toLowerCase()
}

function sendJson(req: IncomingMessage, res: ServerResponse, body: string): void {
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`
  res.setHeader('Cache-Control', `public, max-age=${DISCOVERY_MAX_AGE_SECONDS}`)
  res.setHeader('ETag', etag)
  if (req.headers['if-none-match'] === etag) {
    res.statusCode = 304
    res.end()
    return
  }
  res.setHeader('Content-Type', 'application/json')
  res.setHeader('Content-Length', Buffer.byteLength(body))
  res.end(req.method === 'HEAD' ? undefined : body)
}

function sendError(res: ServerResponse, status: number, error: string): void {
  const body = JSON.stringify({ error })
  res.statusCode = status
  res.setHeader('Content-Type', 'application/json')
  res.setHeader('Cache-Control', 'no-store')
  res.end(body)
}
