import { once } from 'node:events'
import type { IncomingHttpHeaders } from 'node:http'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { gzipSync } from 'node:zlib'
import { TestCa } from './test-ca.js'

/** One request the echo upstream received. */
export interface EchoedRequest {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
}

/** A real HTTPS server on loopback with its own test CA, standing in for a third-party API. */
export interface HttpsEcho {
  readonly port: number
  /** The CA that issued its certificate (for `localhost`), PEM: the broker's `--upstream-ca`. */
  readonly caPem: string
  readonly received: EchoedRequest[]
  close(): Promise<void>
}

/** The credential the upstream got: a bearer token, a basic pair, or the `key` query parameter. */
function credentialOf(url: string, headers: IncomingHttpHeaders): string {
  const auth = headers.authorization ?? ''
  if (auth.startsWith('Bearer ')) return auth.slice('Bearer '.length)
  if (auth.startsWith('Basic ')) return Buffer.from(auth.slice('Basic '.length), 'base64').toString()
  return new URL(url, 'https://x').searchParams.get('key') ?? String(headers['x-api-key'] ?? '')
}

/** Everything an upstream might echo of a credential: as it is, base64, base64url, URL-encoded. */
function formsOf(secret: string) {
  return {
    plain: secret,
    base64: Buffer.from(secret).toString('base64'),
    base64url: Buffer.from(secret).toString('base64url'),
    urlEncoded: encodeURIComponent(secret),
  }
}

/**
 * Starts the echo upstream. Every path answers with JSON of what it got (method, URL, headers: the
 * injected credential included) unless it is one of: `/forbidden` (a 403 whose body and headers
 * echo the credential in every encoding), `/split` (the same body in two writes, the credential cut
 * in the middle), `/gzip` (the echo gzipped whatever was asked), `/redirect` (302 to another host,
 * the credential in the Location), `/slow` (never answers), `/huge` (declares 4 MiB), `/endless` (streams without a length until cut off).
 */
export async function startHttpsEcho(): Promise<HttpsEcho> {
  const ca = await TestCa.create('upstream.test')
  const leaf = await ca.issue('spiffe://upstream.test/echo', { dnsNames: ['localhost'] })
  const received: EchoedRequest[] = []
  const server: Server = createServer({ key: leaf.keyPem, cert: leaf.certPem }, (req, res) => {
    const url = req.url ?? '/'
    received.push({ method: req.method ?? 'GET', url, headers: req.headers })
    req.resume()
    const secret = credentialOf(url, req.headers)
    const forms = formsOf(secret)
    const echo = JSON.stringify({ method: req.method, url, headers: req.headers, forms })
    const path = url.split('?')[0] ?? '/'
    if (path.endsWith('/slow')) return
    if (path.endsWith('/endless')) {
      // Chunked, no declared length: 64 KiB at a time until the broker hangs up.
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      const more = () => {
        while (res.write(Buffer.alloc(64 * 1024, 0x62)));
        if (!res.destroyed) res.once('drain', more)
      }
      res.once('close', () => res.removeAllListeners('drain'))
      more()
      return
    }
    if (path.endsWith('/huge')) {
      res.writeHead(200, { 'content-length': String(4 * 1024 * 1024) })
      res.write(Buffer.alloc(64 * 1024, 0x61))
      return
    }
    if (path.endsWith('/redirect')) {
      res.writeHead(302, { location: `https://elsewhere.invalid/steal?token=${forms.urlEncoded}` })
      res.end()
      return
    }
    if (path.endsWith('/gzip')) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' })
      res.end(gzipSync(echo))
      return
    }
    if (path.endsWith('/split')) {
      const body = `{"token":"${secret}","b64":"${forms.base64}"}`
      const cut = body.indexOf(secret) + Math.floor(secret.length / 2)
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write(body.slice(0, cut))
      setTimeout(() => res.end(body.slice(cut)), 50)
      return
    }
    const status = path.endsWith('/forbidden') ? 403 : 200
    res.writeHead(status, {
      'content-type': 'application/json',
      'x-echo-token': forms.plain,
      'x-echo-token-b64': forms.base64,
      'www-authenticate': `Bearer error="invalid_token", token="${forms.base64url}", q="${forms.urlEncoded}"`,
    })
    res.end(echo)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as AddressInfo).port,
    caPem: ca.bundlePem,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
