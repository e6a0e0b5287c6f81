import { createServer, type Server as NetServer, type Socket } from 'node:net'
import { createServer as createTlsServer, type TLSSocket, type Server as TlsServer } from 'node:tls'
import { type experimental, type Server as GrpcServer, ServerCredentials } from '@grpc/grpc-js'
import { IdentityError } from '../../lib/core/errors.js'
import {
  HandshakeLimits,
  type HandshakeLimitsOptions,
  type HandshakeRefusal,
  type HandshakeSlot,
} from './handshake-limits.js'

/** The logger port of a {@link TlsListener} (a pino child logger fits). */
export interface TlsListenerLog {
  debug(fields: object, message: string): void
  warn(fields: object, message: string): void
}

/** Options of {@link listenTls}. */
export interface TlsListenerOptions extends HandshakeLimitsOptions {
  /** Host or IP literal to bind (no brackets). */
  readonly host: string
  /** TCP port; 0 picks a free one. */
  readonly port: number
  /** The server's certificate chain and key, and the CA certificates client certificates are checked against. */
  readonly certificates: experimental.CertificateProvider
  /** A handshake not finished this long after accept is cut off; default 10 s (Node's own: 120 s). */
  readonly handshakeTimeoutMs?: number
  /** Connections of every kind past this are dropped at accept; default 4096. */
  readonly maxConnections?: number
  /** Told of every connection dropped or cut off before its handshake ended (summarise before auditing). */
  readonly onRefused?: (refusal: HandshakeRefusal) => void
  readonly log?: TlsListenerLog
}

/** A running TLS listener feeding a grpc-js server. */
export interface TlsListener {
  /** The TCP port bound. */
  readonly port: number
  /** Stops accepting and closes every connection still handshaking (the gRPC server closes the rest). */
  close(): Promise<void>
}

/** Keeps the TLS server's context on the latest certificates; returns whether both halves arrived. */
function watchCertificates(provider: experimental.CertificateProvider, server: TlsServer): () => boolean {
  let identity: experimental.IdentityCertificateUpdate | null = null
  let ca: experimental.CaCertificateUpdate | null = null
  const update = () => {
    if (identity && ca)
      server.setSecureContext({ cert: identity.certificate, key: identity.privateKey, ca: ca.caCertificate })
  }
  provider.addIdentityCertificateListener((u) => {
    identity = u
    update()
  })
  provider.addCaCertificateListener((u) => {
    ca = u
    update()
  })
  return () => identity !== null && ca !== null
}

interface Pending {
  readonly address: string
  readonly slot: HandshakeSlot
  readonly raw: Socket
  readonly timer: NodeJS.Timeout
}

/** Accepted sockets on their way through the TLS handshake, each holding a {@link HandshakeLimits} slot. */
class HandshakeGate {
  readonly #options: TlsListenerOptions
  readonly #timeoutMs: number
  readonly #tls: TlsServer
  readonly #isReady: () => boolean
  readonly #limits: HandshakeLimits
  readonly #pending = new Map<string, Pending>()
  readonly #inject: (tls: TLSSocket) => void

  constructor(options: TlsListenerOptions, inject: (tls: TLSSocket) => void) {
    this.#options = options
    this.#inject = inject
    this.#timeoutMs = options.handshakeTimeoutMs ?? 10_000
    this.#tls = createTlsServer({
      requestCert: true,
      rejectUnauthorized: false,
      ALPNProtocols: ['h2'],
      handshakeTimeout: this.#timeoutMs,
    })
    this.#isReady = watchCertificates(options.certificates, this.#tls)
    this.#limits = new HandshakeLimits(options)
    this.#tls.on('tlsClientError', (err: NodeJS.ErrnoException, tls: TLSSocket) => this.#failed(err, tls))
    this.#tls.on('secureConnection', (tls: TLSSocket) => this.#secured(tls))
  }

  /** Takes an accepted socket through the handshake, or closes it at once when over a cap. */
  accept(raw: Socket): void {
    raw.on('error', () => undefined)
    const address = raw.remoteAddress ?? 'unknown'
    const key = `${address}:${raw.remotePort}`
    const evict = () => {
      const entry = this.#settle(key)
      if (entry === undefined) return
      this.refuse(address, 'TLS handshake cut off to make room for a newer connection')
      raw.destroy()
      entry.slot.closed()
    }
    const slot = this.#isReady()
      ? this.#limits.acquire(address, evict)
      : 'the TLS certificates are not loaded yet'
    if (typeof slot === 'string') {
      raw.destroy()
      this.refuse(address, slot)
      return
    }
    // Node's handshakeTimeout cuts the handshake off; this one is a backstop for a socket it missed.
    const timer = setTimeout(() => {
      if (this.#settle(key) === undefined) return
      this.refuse(address, `TLS handshake not done within ${this.#timeoutMs} ms`)
      raw.destroy()
      slot.closed()
    }, this.#timeoutMs + 1000)
    this.#pending.set(key, { address, slot, raw, timer })
    raw.once('close', () => {
      this.#settle(key)
      slot.closed()
    })
    this.#tls.emit('connection', raw)
  }

  refuse(address: string, reason: string): void {
    this.#options.log?.debug({ address, reason }, 'TLS connection refused.')
    this.#options.onRefused?.({ address, code: 'ERR_CONNECTION_LIMIT', reason })
  }

  /** Closes every connection still handshaking. */
  closeAll(): void {
    for (const entry of this.#pending.values()) entry.raw.destroy()
  }

  /** The handshake is over, one way or the other: its slot is given back. */
  #settle(key: string): Pending | undefined {
    const entry = this.#pending.get(key)
    if (entry === undefined) return undefined
    this.#pending.delete(key)
    clearTimeout(entry.timer)
    entry.slot.handshakeEnded()
    return entry
  }

  #failed(err: NodeJS.ErrnoException, tls: TLSSocket): void {
    const entry = this.#settle(`${tls.remoteAddress}:${tls.remotePort}`)
    if (entry === undefined) return
    const timedOut = err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT'
    this.refuse(
      entry.address,
      timedOut ? `TLS handshake not done within ${this.#timeoutMs} ms` : 'TLS handshake failed',
    )
    entry.raw.destroy()
    entry.slot.closed()
  }

  #secured(tls: TLSSocket): void {
    const entry = this.#settle(`${tls.remoteAddress}:${tls.remotePort}`)
    tls.on('error', (err) => this.#options.log?.debug({ err }, 'TLS connection error.'))
    if (entry === undefined || tls.alpnProtocol !== 'h2') {
      tls.destroy()
      if (entry === undefined) return
      this.refuse(entry.address, 'the client did not negotiate HTTP/2')
      entry.slot.closed()
      return
    }
    tls.once('close', () => entry.slot.closed())
    this.#inject(tls)
  }
}

/**
 * Serves a grpc-js server over TCP + TLS with the TLS handshake done here rather than inside grpc-js,
 * so that it can be bounded (DESIGN §9: no peer can exhaust the server): a handshake must finish
 * within `handshakeTimeoutMs`, at most `maxHandshaking` connections (and `maxHandshakingPerAddress`
 * per source address) may be handshaking at once, and one address may hold at most
 * `maxConnectionsPerAddress` connections in all; past any of these a new connection is closed at
 * accept. The handshake is Node's own `tls.Server`, fed accepted sockets; a finished handshake that
 * negotiated HTTP/2 (ALPN `h2`) is handed to grpc-js, which sees the TLS socket as usual
 * (`call.getAuthContext()` holds the client certificate). Client certificates are asked for, not
 * required, and checked by the handlers.
 * @throws ERR_CONFIG_INVALID when the address cannot be bound
 */
export async function listenTls(grpc: GrpcServer, options: TlsListenerOptions): Promise<TlsListener> {
  const injector = grpc.createConnectionInjector(ServerCredentials.createInsecure())
  const gate = new HandshakeGate(options, (tls) => injector.injectConnection(tls))
  const net: NetServer = createServer((raw) => gate.accept(raw))
  net.maxConnections = options.maxConnections ?? 4096
  net.on('drop', (d) => gate.refuse(d?.remoteAddress ?? 'unknown', 'too many connections'))
  const port = await bind(net, options.host, options.port)
  return {
    port,
    close: async () => {
      net.close()
      gate.closeAll()
    },
  }
}

function bind(net: NetServer, host: string, port: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const fail = (err: NodeJS.ErrnoException) => {
      const why = err.code ?? err.message
      reject(
        new IdentityError('ERR_CONFIG_INVALID', `cannot listen on ${host}:${port}: ${why}`, { cause: err }),
      )
    }
    net.once('error', fail)
    net.listen({ host, port }, () => {
      net.off('error', fail)
      const address = net.address()
      resolve(typeof address === 'object' && address !== null ? address.port : port)
    })
  })
}
