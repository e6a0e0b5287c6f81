import { once } from 'node:events'
import { Agent, createServer, type IncomingMessage, request, type ServerResponse } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import type { AddressInfo } from 'node:net'
import { report, runChild, taskOf, untilStdinEnds } from './common.js'

/**
 * Where {@link main} forwards to: the upstream's Unix socket (as `tessera gateway --upstream unix://…`),
 * or an HTTPS upstream on loopback whose certificate names `localhost` (as a `tessera broker` route).
 */
export type BareProxyTask =
  | { readonly socket: string }
  | { readonly https: { readonly port: number; readonly caPem: string } }

/** The first line a bare proxy child prints. */
export interface BareProxyReady {
  readonly pid: number
  readonly port: number
}

type Handle = (req: IncomingMessage, res: ServerResponse) => void

function pipeAnswer(res: ServerResponse) {
  return (answer: IncomingMessage) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers)
    answer.pipe(res)
  }
}

function failed(res: ServerResponse) {
  return () => {
    if (!res.headersSent) res.writeHead(502)
    res.end()
  }
}

function toSocket(socket: string): { handle: Handle; agent: Agent } {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 })
  const handle: Handle = (req, res) => {
    const options = { socketPath: socket, agent, method: req.method, path: req.url, headers: req.headers }
    const upstream = request(options, pipeAnswer(res))
    upstream.on('error', failed(res))
    req.pipe(upstream)
  }
  return { handle, agent }
}

function toHttps(port: number, caPem: string): { handle: Handle; agent: HttpsAgent } {
  const agent = new HttpsAgent({ keepAlive: true, maxSockets: 64, ca: caPem })
  const handle: Handle = (req, res) => {
    const headers = { ...req.headers, host: `localhost:${port}` }
    const options = {
      host: '127.0.0.1',
      servername: 'localhost',
      port,
      agent,
      method: req.method,
      path: req.url,
      headers,
    }
    const upstream = httpsRequest(options, pipeAnswer(res))
    upstream.on('error', failed(res))
    req.pipe(upstream)
  }
  return { handle, agent }
}

/**
 * Child process: the least a Node reverse proxy does — every request forwarded to the upstream's
 * Unix socket (or HTTPS port) over kept-alive connections, method, path and headers as they came, the answer piped
 * back — with no identity check at all: the baseline `tessera gateway` is measured against (issue 8,
 * DESIGN §8). Prints {@link BareProxyReady}; stops when its stdin closes.
 */
async function main(): Promise<void> {
  const task = taskOf<BareProxyTask>()
  const forward = 'socket' in task ? toSocket(task.socket) : toHttps(task.https.port, task.https.caPem)
  const server = createServer(forward.handle)
  server.keepAliveTimeout = 60_000
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  report({ pid: process.pid, port: (server.address() as AddressInfo).port } satisfies BareProxyReady)
  await untilStdinEnds()
  server.closeAllConnections()
  server.close()
  forward.agent.destroy()
}

runChild(main)
