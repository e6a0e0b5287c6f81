import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { report, runChild, taskOf, untilStdinEnds } from './common.js'

/** What {@link main} serves on: a Unix socket path (the gateway's upstream); TCP is on a free port. */
export interface UpstreamTask {
  readonly socket: string
}

/** The first line an upstream child prints. */
export interface UpstreamReady {
  readonly pid: number
  /** The TCP port on 127.0.0.1 (the direct baseline). */
  readonly port: number
}

const BODY = Buffer.from('{"ok":true}\n')

/** The least an HTTP tool can do: a 12-byte JSON answer to every request, body read and dropped. */
function tinyTool(): Server {
  const server = createServer((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length })
    res.end(BODY)
  })
  // The load's connections idle between their windows: keep them open longer than that.
  server.keepAliveTimeout = 60_000
  return server
}

async function listen(server: Server, at: string | number): Promise<void> {
  if (typeof at === 'string') server.listen(at)
  else server.listen(at, '127.0.0.1')
  await once(server, 'listening')
}

/**
 * Child process: one tiny HTTP tool listening both on the Unix socket `socket` and on 127.0.0.1
 * (a free port), prints {@link UpstreamReady}, and stops when its stdin closes.
 */
async function main(): Promise<void> {
  const { socket } = taskOf<UpstreamTask>()
  const onUnix = tinyTool()
  const onTcp = tinyTool()
  await listen(onUnix, socket)
  await listen(onTcp, 0)
  const ready: UpstreamReady = { pid: process.pid, port: (onTcp.address() as AddressInfo).port }
  report(ready)
  await untilStdinEnds()
  for (const server of [onUnix, onTcp]) {
    server.closeAllConnections()
    server.close()
  }
}

runChild(main)
