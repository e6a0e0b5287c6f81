import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders, type IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { acceptKeyFor, encodeFrame, FrameReader, OPCODE_CLOSE, OPCODE_TEXT } from './ws-frames.js'

/** What the tool saw of one request. */
export interface SeenRequest {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

/**
 * An "unauthenticated local tool" on a Unix socket, as tools are today: it trusts whoever connects.
 * HTTP requests are answered with JSON of what it saw (the identity header included); WebSocket
 * upgrades are accepted and every text frame is echoed back as `<identity>|<text>`.
 */
export interface EchoTool {
  readonly socketPath: string
  readonly seen: ReadonlyArray<SeenRequest>
  /** The payload of every WebSocket data frame received (fragments one by one), as text. */
  readonly frames: ReadonlyArray<string>
  close(): Promise<void>
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

async function echoFrames(socket: Duplex, identity: string, received: string[]): Promise<void> {
  const reader = new FrameReader(socket)
  for (;;) {
    const frame = await reader.next()
    if (frame.opcode < OPCODE_CLOSE) received.push(frame.payload.toString())
    if (frame.opcode === OPCODE_CLOSE) {
      socket.end(encodeFrame(Buffer.alloc(0), { mask: false, opcode: OPCODE_CLOSE }))
      return
    }
    if (frame.opcode === OPCODE_TEXT)
      socket.write(encodeFrame(Buffer.from(`${identity}|${frame.payload.toString()}`), { mask: false }))
  }
}

/** Starts the tool on `socketPath`. */
export async function startEchoTool(socketPath: string): Promise<EchoTool> {
  const seen: SeenRequest[] = []
  const frames: string[] = []
  const sockets = new Set<Duplex>()
  const server = createServer(async (req, res) => {
    const body = await readBody(req)
    const request = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body }
    seen.push(request)
    const json = JSON.stringify({ spiffeId: req.headers['x-tessera-spiffe-id'] ?? null, ...request })
    res.writeHead(200, { 'content-type': 'application/json' }).end(json)
  })
  server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: '' })
    const key = String(req.headers['sec-websocket-key'] ?? '')
    const identity = String(req.headers['x-tessera-spiffe-id'] ?? 'anonymous')
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${acceptKeyFor(key)}\r\n\r\n`,
    )
    echoFrames(socket, identity, frames).catch(() => socket.destroy())
  })
  server.listen(socketPath)
  await once(server, 'listening')
  return {
    socketPath,
    seen,
    frames,
    async close() {
      for (const socket of sockets) socket.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
