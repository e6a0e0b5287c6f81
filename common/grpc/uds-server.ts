import { chmod, lstat } from 'node:fs/promises'
import { createServer, type Server as NetServer, type Socket } from 'node:net'
import {
  type ConnectionInjector,
  Server as GrpcServer,
  ServerCredentials,
  ServerInterceptingCall,
  type ServerInterceptor,
  type ServerOptions,
  status,
} from '@grpc/grpc-js'
import { IdentityError } from '../../lib/core/errors.js'
import { toServiceError } from '../../lib/grpc/status.js'
import { fdOf, getPeerCred, type PeerCred } from '../peercred/peercred.js'
import { defaultUidCap, UidConnectionLimits, type UidConnectionPolicy } from './connection-limits.js'
import { prepareSocketPath, unlinkIfSame } from './socket-file.js'

/** The logger port this server writes to (a pino child logger fits). */
export interface UdsServerLog {
  debug(fields: object, message: string): void
  warn(fields: object, message: string): void
}

/** Options for {@link UdsServer}. Paths and modes come from config. */
export interface UdsServerOptions<I> {
  /** Absolute path of the socket. A stale socket file there is replaced; a live one is an error. */
  readonly path: string
  /** Mode of the socket's parent directory if it has to be created (e.g. 0o700 admin, 0o755 public). */
  readonly dirMode: number
  /** Mode set on the socket file after bind (e.g. 0o600 admin, 0o777 Workload API). */
  readonly socketMode: number
  /**
   * Attests a paused connection and returns its identity; throwing refuses (the socket is
   * destroyed). It must not read from or resume the socket: grpc-js needs the first bytes.
   */
  readonly admit: (socket: Socket, creds: PeerCred) => Promise<I>
  /** Called once when an admitted connection ends, e.g. to close a pidfd. */
  readonly release?: (identity: I) => void
  /**
   * The socket grpc-js serves instead of the admitted one (e.g. a credential-checking relay,
   * common/peercred/peer-relay.ts); destroying either must destroy both. Default: the admitted socket.
   */
  readonly connectionFor?: (socket: Socket, identity: I) => Socket
  /** Runs once bound, with the listening socket's fd, before any connection is accepted. */
  readonly onListening?: (listenFd: number) => void
  /** Connections (admitted or being admitted) past this are dropped at accept; default 1024. */
  readonly maxConnections?: number
  /**
   * Per-uid admission, checked at accept from SO_PEERCRED before `admit` runs or a byte is read:
   * default, every uid may hold {@link defaultUidCap} of `maxConnections`.
   */
  readonly uidPolicy?: UidConnectionPolicy
  /**
   * A connection with no call in flight and no open stream for this long is closed (HTTP/2 GOAWAY,
   * then close; clients reconnect on their next call); default: never.
   */
  readonly idleTimeoutMs?: number
  /** Largest request message the gRPC server accepts; default 4 MiB. */
  readonly maxMessageBytes?: number
  /** Calls and streams at once on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); default: no limit. */
  readonly maxConcurrentStreams?: number
  /** An admission still running after this is refused; default 5000 ms. */
  readonly admitTimeoutMs?: number
  /** Interceptors run after the one that rejects unadmitted connections. */
  readonly interceptors?: readonly ServerInterceptor[]
  readonly log?: UdsServerLog
}

interface Admitted {
  readonly owner: object
  readonly identity: unknown
}

/** Tag (`uds-conn:N`, the socket's `remoteAddress`) → admitted identity, for every UdsServer here. */
const admitted = new Map<string, Admitted>()
let tagCounter = 0
const noop = (): void => {}

/**
 * The admitted identity of the connection a call came in on, by its tag (`call.getPeer()`);
 * undefined when the connection was not admitted here. `I` is whatever the `admit` hook of the
 * serving {@link UdsServer} returned (unchecked: prefer {@link UdsServer.peerOf}).
 */
export function peerOf<I = unknown>(call: { getPeer(): string }): I | undefined {
  return admitted.get(call.getPeer())?.identity as I | undefined
}

/**
 * Server interceptor that fails every call on a connection no {@link UdsServer} admitted with
 * PERMISSION_DENIED (ERR_PEER_UNAUTHORIZED), before the handler runs. UdsServer installs it itself.
 */
export const requireAdmittedPeer: ServerInterceptor = (_method, call) =>
  new ServerInterceptingCall(call, {
    start: (next) =>
      next({
        onReceiveMetadata: (metadata, forward) => {
          if (admitted.has(call.getPeer())) return forward(metadata)
          const {
            code,
            details,
            metadata: trailers,
          } = toServiceError(new IdentityError('ERR_PEER_UNAUTHORIZED', 'connection was not admitted'))
          call.sendStatus({
            code: code ?? status.PERMISSION_DENIED,
            details: details ?? '',
            metadata: trailers ?? null,
          })
        },
      }),
  })

/** The grpc-js server options a {@link UdsServer} runs with. */
function grpcOptionsOf<I>(options: UdsServerOptions<I>): ServerOptions {
  const out: ServerOptions = {
    'grpc.max_receive_message_length': options.maxMessageBytes ?? 4 * 1024 * 1024,
    interceptors: [requireAdmittedPeer, ...(options.interceptors ?? [])],
  }
  if (options.idleTimeoutMs !== undefined) out['grpc.max_connection_idle_ms'] = options.idleTimeoutMs
  if (options.maxConcurrentStreams !== undefined)
    out['grpc.max_concurrent_streams'] = options.maxConcurrentStreams
  return out
}

function listenFdOf(server: NetServer): number {
  const fd = (server as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd
  if (typeof fd !== 'number' || fd < 0) throw new Error('the listening socket has no descriptor')
  return fd
}

/**
 * A gRPC server on a Unix socket that knows who is calling (DESIGN §5 "peer identity per call"):
 * it accepts connections itself, paused; runs `admit`; tags the socket with a unique
 * `remoteAddress`; injects it into grpc-js; then resumes it. Handlers map `call.getPeer()` to the
 * identity with {@link UdsServer.peerOf}. The gRPC server binds no port, so injection is the only
 * way in: an unadmitted connection cannot reach a handler (the interceptor double-checks).
 * Add services to {@link UdsServer.grpc} before {@link UdsServer.listen}.
 */
export class UdsServer<I> {
  /** The gRPC server: add services here. Do not bind it to ports. */
  readonly grpc: GrpcServer
  readonly #options: UdsServerOptions<I>
  readonly #net: NetServer
  readonly #injector: ConnectionInjector
  readonly #sockets = new Set<Socket>()
  readonly #limits: UidConnectionLimits
  #dropped = 0
  #lastDropLogMs = Number.NEGATIVE_INFINITY
  #boundIno: number | undefined
  #closing: Promise<void> | undefined

  constructor(options: UdsServerOptions<I>) {
    this.#options = options
    this.grpc = new GrpcServer(grpcOptionsOf(options))
    this.#injector = this.grpc.createConnectionInjector(ServerCredentials.createInsecure())
    this.#net = createServer({ pauseOnConnect: true }, (socket) => this.#onConnection(socket))
    this.#net.maxConnections = options.maxConnections ?? 1024
    const uidCap = defaultUidCap(this.#net.maxConnections)
    this.#limits = new UidConnectionLimits(options.uidPolicy ?? { capFor: () => uidCap })
    this.#net.on('drop', () => this.#onDrop())
  }

  /** The identity admitted for the connection of `call`; undefined if another server admitted it. */
  peerOf(call: { getPeer(): string }): I | undefined {
    const entry = admitted.get(call.getPeer())
    return entry?.owner === this ? (entry.identity as I) : undefined
  }

  /** Number of open connections, admitted or being admitted. */
  get connectionCount(): number {
    return this.#sockets.size
  }

  /**
   * Creates the parent directory (mode `dirMode`) if needed, replaces a stale socket, binds and
   * sets `socketMode` on the socket.
   * @throws ERR_CONFIG_INVALID when the path is held by a live server, is not a socket, or cannot
   *   be created or bound.
   */
  async listen(): Promise<void> {
    const { path, dirMode, socketMode } = this.#options
    try {
      await prepareSocketPath(path, dirMode)
      await new Promise<void>((resolve, reject) => {
        this.#net.once('error', reject)
        this.#net.listen(path, () => {
          this.#net.off('error', reject)
          try {
            this.#options.onListening?.(listenFdOf(this.#net))
            resolve()
          } catch (err) {
            reject(err)
          }
        })
      })
      await chmod(path, socketMode)
      this.#boundIno = (await lstat(path)).ino
    } catch (err) {
      if (err instanceof IdentityError) throw err
      throw new IdentityError('ERR_CONFIG_INVALID', `cannot listen on ${path}`, { cause: err })
    }
  }

  /**
   * Stops accepting, lets calls finish for up to `graceMs`, then closes every connection and
   * removes the socket file. Idempotent.
   */
  close(graceMs = 2000): Promise<void> {
    this.#closing ??= this.#shutdown(graceMs)
    return this.#closing
  }

  async #shutdown(graceMs: number): Promise<void> {
    const netClosed = new Promise<void>((resolve) => this.#net.close(() => resolve()))
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.grpc.forceShutdown()
        resolve()
      }, graceMs)
      this.grpc.tryShutdown(() => {
        clearTimeout(timer)
        resolve()
      })
    })
    for (const socket of this.#sockets) socket.destroy()
    await netClosed
    await unlinkIfSame(this.#options.path, this.#boundIno)
  }

  /** A connection past `maxConnections` was dropped: logged once, then at most every 10 s with a count. */
  #onDrop(): void {
    this.#dropped += 1
    const nowMs = performance.now()
    if (nowMs - this.#lastDropLogMs < 10_000) return
    this.#lastDropLogMs = nowMs
    this.#options.log?.warn({ dropped: this.#dropped }, 'Connections dropped: too many connections.')
    this.#dropped = 0
  }

  #onConnection(socket: Socket): void {
    if (this.#closing) {
      socket.destroy()
      return
    }
    this.#sockets.add(socket)
    socket.on('error', (err) => this.#options.log?.debug({ err }, 'Connection error.'))
    socket.once('close', () => this.#sockets.delete(socket))
    let creds: PeerCred
    try {
      creds = getPeerCred(fdOf(socket))
    } catch (err) {
      this.#options.log?.debug({ err }, 'Connection refused: no peer credentials.')
      socket.destroy()
      return
    }
    const slot = this.#limits.acquire(creds)
    if (typeof slot !== 'function') {
      socket.destroy()
      return
    }
    socket.once('close', slot)
    this.#admit(socket, creds).catch((err: unknown) => {
      this.#options.log?.debug({ err }, 'Connection refused.')
      socket.destroy()
    })
  }

  async #admit(socket: Socket, creds: PeerCred): Promise<void> {
    const identity = await this.#runAdmit(socket, creds)
    if (socket.destroyed || this.#closing) {
      this.#release(identity)
      socket.destroy()
      return
    }
    let conn: Socket
    try {
      conn = this.#options.connectionFor?.(socket, identity) ?? socket
    } catch (err) {
      this.#release(identity)
      throw err
    }
    tagCounter += 1
    const tag = `uds-conn:${tagCounter}`
    Object.defineProperty(conn, 'remoteAddress', { get: () => tag, configurable: true })
    admitted.set(tag, { owner: this, identity })
    socket.once('close', () => {
      admitted.delete(tag)
      this.#release(identity)
    })
    this.#options.log?.debug(
      { pid: creds.pid, uid: creds.uid, gid: creds.gid, peer: tag },
      'Connection admitted.',
    )
    this.#injector.injectConnection(conn)
    conn.resume()
  }

  #release(identity: I): void {
    try {
      this.#options.release?.(identity)
    } catch (err) {
      this.#options.log?.warn({ err }, 'Releasing a connection identity failed.')
    }
  }

  /** Runs the admit hook under the timeout; an identity that arrives too late is released. */
  #runAdmit(socket: Socket, creds: PeerCred): Promise<I> {
    const timeoutMs = this.#options.admitTimeoutMs ?? 5000
    const pending = this.#options.admit(socket, creds)
    return new Promise<I>((resolve, reject) => {
      let timedOut = false
      const timer = setTimeout(() => {
        timedOut = true
        reject(new IdentityError('ERR_PEER_UNAUTHORIZED', `admission took over ${timeoutMs} ms`))
      }, timeoutMs)
      pending.then(
        (identity) => (timedOut ? this.#release(identity) : resolve(identity)),
        (err: unknown) => reject(err),
      )
      pending.finally(() => clearTimeout(timer)).catch(noop)
    })
  }
}
