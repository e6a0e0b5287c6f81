import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { Call } from './gateway.js'

/** A reply as the client sees it while it streams: status, headers, the bytes so far, how it ended. */
export interface OpenStream {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  /** The body so far, as text. */
  text(): string
  /** `end`: the body ended as HTTP says a body ends; `cut`: the connection went first. */
  readonly ended: Promise<'end' | 'cut'>
  /** Goes away (destroys the request). */
  close(): void
}

/**
 * Sends a request (over HTTPS with `call.tls`) and resolves with its reply as soon as the headers
 * come, the body still streaming. Rejects when the request fails before the headers.
 */
export function openStream(port: number, call: Call = {}): Promise<OpenStream> {
  const make = call.tls === undefined ? httpRequest : httpsRequest
  return new Promise((resolve, reject) => {
    const req = make({
      host: '127.0.0.1',
      port,
      method: call.method ?? 'GET',
      path: call.path ?? '/',
      headers: { host: `127.0.0.1:${port}`, ...call.headers },
      agent: false,
      ...call.tls,
    })
    req.on('error', reject)
    req.on('response', (res) => {
      const chunks: Buffer[] = []
      let isEnded = false
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        isEnded = true
      })
      res.on('error', () => undefined)
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        text: () => Buffer.concat(chunks).toString('utf8'),
        ended: new Promise((done) => res.on('close', () => done(isEnded ? 'end' : 'cut'))),
        close: () => req.destroy(),
      })
    })
    req.end(call.body)
  })
}
