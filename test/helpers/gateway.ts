import { request as httpRequest, type IncomingHttpHeaders, type RequestOptions } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { Duplex } from 'node:stream'
import { type HttpFrontProcess, startHttpFrontProcess } from './http-front.js'
import { FrameReader, newWebSocketKey } from './ws-frames.js'

/** A `tessera gateway` child. */
export type GatewayProcess = HttpFrontProcess

/** Spawns `tessera gateway <args>` with `env` only and waits for its `gateway ready` line. */
export function startGatewayProcess(
  args: ReadonlyArray<string>,
  env: Readonly<Record<string, string>>,
): Promise<GatewayProcess> {
  return startHttpFrontProcess('gateway', args, env)
}

/** A finished HTTP exchange. */
export interface Answer {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

/** What to send; `host` defaults to `127.0.0.1:<port>`. */
export interface Call {
  readonly method?: string
  readonly path?: string
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: string
  /** Bind to this loopback address (127.0.0.2, …): another peer for the throttle. */
  readonly localAddress?: string
  /** HTTPS with these TLS options (key, cert, ca, …). */
  readonly tls?: Readonly<Record<string, unknown>>
}

function options(port: number, call: Call): RequestOptions {
  return {
    host: '127.0.0.1',
    port,
    method: call.method ?? 'GET',
    path: call.path ?? '/tools/echo',
    headers: { host: `127.0.0.1:${port}`, ...call.headers },
    agent: false,
    ...(call.localAddress !== undefined && { localAddress: call.localAddress }),
    ...call.tls,
  }
}

/** Sends one request and collects the answer. */
export function send(port: number, call: Call = {}): Promise<Answer> {
  const make = call.tls === undefined ? httpRequest : httpsRequest
  return new Promise((resolve, reject) => {
    const req = make(options(port, call), (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => {
        body += d
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end(call.body)
  })
}

/** An upgrade's outcome: an open WebSocket, or the HTTP answer that refused it. */
export type Upgrade =
  | { readonly isOpen: true; readonly socket: Duplex; readonly frames: FrameReader }
  | ({ readonly isOpen: false } & Answer)

/** Opens a WebSocket with a raw handshake (no `ws` dependency). */
export function openWebSocket(port: number, call: Call = {}): Promise<Upgrade> {
  const headers = {
    connection: 'Upgrade',
    upgrade: 'websocket',
    'sec-websocket-version': '13',
    'sec-websocket-key': newWebSocketKey(),
    ...call.headers,
  }
  const make = call.tls === undefined ? httpRequest : httpsRequest
  return new Promise((resolve, reject) => {
    const req = make(options(port, { ...call, path: call.path ?? '/ws', headers }))
    req.on('upgrade', (_res, socket, head) =>
      resolve({ isOpen: true, socket, frames: new FrameReader(socket, head) }),
    )
    req.on('response', (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => {
        body += d
      })
      res.on('end', () => resolve({ isOpen: false, status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end()
  })
}
