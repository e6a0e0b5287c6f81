import { connect, createServer, type Server, type Socket } from 'node:net'

/** Where a forwarder relays to: a Unix socket path or a TCP host and port. */
export type ForwardTarget = { readonly path: string } | { readonly host: string; readonly port: number }

/** A running forwarder. */
export interface Forwarder {
  /** The TCP port it listens on (0 when it listens on a Unix socket). */
  readonly port: number
  close(): Promise<void>
}

function dial(target: ForwardTarget): Socket {
  return 'path' in target ? connect(target.path) : connect(target.port, target.host)
}

/**
 * Relays every connection accepted on `listen` (a TCP host, on a free port, or a Unix socket path) to
 * `target`, byte for byte (a CONNECT tunnel or a plain proxied request pass through unchanged).
 * Either side closing closes both.
 */
export function startForwarder(
  listen: { host: string } | { path: string },
  target: ForwardTarget,
): Promise<Forwarder> {
  const sockets = new Set<Socket>()
  const server: Server = createServer((inbound) => {
    const outbound = dial(target)
    for (const s of [inbound, outbound]) {
      sockets.add(s)
      s.once('close', () => sockets.delete(s))
      s.on('error', () => {
        inbound.destroy()
        outbound.destroy()
      })
    }
    inbound.pipe(outbound)
    outbound.pipe(inbound)
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    const ready = () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      resolve({
        port,
        close: () =>
          new Promise((done) => {
            for (const s of sockets) s.destroy()
            server.close(() => done())
          }),
      })
    }
    if ('path' in listen) server.listen(listen.path, ready)
    else server.listen(0, listen.host, ready)
  })
}

/**
 * Reads `--broker`: `unix:PATH` (or `unix:///PATH`) or an `http://host:port` URL.
 * @returns undefined when the address is malformed
 */
export function parseBrokerAddress(address: string): ForwardTarget | undefined {
  if (address.startsWith('unix:')) {
    const path = address.replace(/^unix:(\/\/)?/, '')
    return path.startsWith('/') ? { path } : undefined
  }
  try {
    const url = new URL(address)
    if (url.protocol !== 'http:' || url.hostname === '') return undefined
    const host = url.hostname.replace(/^\[|\]$/g, '')
    return { host, port: url.port === '' ? 80 : Number(url.port) }
  } catch {
    return undefined
  }
}
