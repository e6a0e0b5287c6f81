import { once } from 'node:events'
import { Agent, createServer, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { report, runChild, taskOf, untilStdinEnds } from './common.js'

/** Where {@link main} forwards to: the upstream's Unix socket (as `tessera gateway --upstream unix://…`). */
export interface BareProxyTask {
  readonly socket: string
}

/** The first line a bare proxy child prints. */
export interface BareProxyReady {
  readonly pid: number
  readonly port: number
}

/**
 * Child process: the least a Node reverse proxy does — every request forwarded to the upstream's
 * Unix socket over kept-alive connections, method, path and headers as they came, the answer piped
 * back — with no identity check at all: the baseline `tessera gateway` is measured against (issue 8,
 * DESIGN §8). Prints {@link BareProxyReady}; stops when its stdin closes.
 */
async function main(): Promise<void> {
  const { socket } = taskOf<BareProxyTask>()
  const agent = new Agent({ keepAlive: true, maxSockets: 64 })
  const server = createServer((req, res) => {
    const upstream = request(
      { socketPath: socket, agent, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      },
    )
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502)
      res.end()
    })
    req.pipe(upstream)
  })
  server.keepAliveTimeout = 60_000
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  report({ pid: process.pid, port: (server.address() as AddressInfo).port } satisfies BareProxyReady)
  await untilStdinEnds()
  server.closeAllConnections()
  server.close()
  agent.destroy()
}

runChild(main)
