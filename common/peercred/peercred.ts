import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { IdentityError } from '../../lib/core/errors.js'

/** Credentials of a Unix-socket peer as the kernel recorded them at its `connect()`. */
export interface PeerCred {
  readonly pid: number
  readonly uid: number
  readonly gid: number
}

/** The native addon's surface (native/peercred.cc). Failures carry `code` = the errno name. */
interface PeercredAddon {
  getPeerCred(fd: number): PeerCred
  getPeerGroups(fd: number): number[]
  getPeerPidfd(fd: number): number
  pidfdOpen(pid: number): number
  pidfdIsAlive(pidfd: number): boolean
  closeFd(fd: number): void
}

const ADDON_PATH = join('build', 'Release', 'peercred.node')
const MAX_LEVELS_UP = 6
let addon: PeercredAddon | undefined

/**
 * Finds the package root by walking up from this file until `build/Release/peercred.node` exists:
 * `common/peercred/` under tsx/vitest is 2 levels below it, `dist/common/peercred/` when compiled is 3.
 */
function findAddonPath(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i <= MAX_LEVELS_UP; i++) {
    const candidate = join(dir, ADDON_PATH)
    if (existsSync(candidate)) return candidate
    const parent = dirname(dir)
    if (parent === dir) break
    dir = parent
  }
  return undefined
}

/** Loads the addon once, on first use, so that importing this module never fails. */
function loadAddon(): PeercredAddon {
  if (addon) return addon
  const path = findAddonPath()
  if (!path) {
    throw new IdentityError('ERR_PEER_UNAUTHORIZED', `peer credentials addon not built (${ADDON_PATH})`)
  }
  try {
    addon = createRequire(import.meta.url)(path) as PeercredAddon
  } catch (err) {
    throw new IdentityError('ERR_PEER_UNAUTHORIZED', 'peer credentials addon failed to load', { cause: err })
  }
  return addon
}

/**
 * Loads the addon now, for processes that cannot serve anyone without it (the server's admin socket,
 * the agent's Workload API): better to refuse to start than to say "ready" and drop every caller.
 * @throws ERR_ADDON_UNAVAILABLE when it is not built or does not load (run `npm ci`, which builds it)
 */
export function requirePeercredAddon(): void {
  try {
    loadAddon()
  } catch (err) {
    throw new IdentityError(
      'ERR_ADDON_UNAVAILABLE',
      `the peer-credential addon (${ADDON_PATH}) is not built or does not load for this Node (${process.version}): run \`npm ci\` (or \`npm rebuild\`) in the install directory`,
      { cause: err },
    )
  }
}

/**
 * The loaded addon, for the other modules of this folder that call its further functions
 * (peer-binding.ts). Callers cast it to the surface they use.
 * @throws ERR_PEER_UNAUTHORIZED when the addon cannot be loaded.
 */
export function peercredAddon(): unknown {
  return loadAddon()
}

/** Calls the addon and wraps its errors; `errnoOf(err)` reads the errno name back. */
function callAddon<T>(what: string, fn: (a: PeercredAddon) => T): T {
  const a = loadAddon()
  try {
    return fn(a)
  } catch (err) {
    throw new IdentityError('ERR_PEER_UNAUTHORIZED', `${what} failed (${errnoOf(err) ?? 'error'})`, {
      cause: err,
    })
  }
}

/**
 * The errno name (`'EBADF'`, `'ENOPROTOOPT'`, …) of a failure from this module, read from the error
 * or its `cause`; undefined for anything else.
 */
export function errnoOf(err: unknown): string | undefined {
  const own = (err as { code?: unknown } | null)?.code
  if (!(err instanceof IdentityError) && typeof own === 'string') return own
  const cause = (err as { cause?: { code?: unknown } } | null)?.cause?.code
  return typeof cause === 'string' ? cause : undefined
}

/**
 * SO_PEERCRED: the pid and effective uid/gid of the process that connected the socket.
 * @throws ERR_PEER_UNAUTHORIZED when the fd is not a connected Unix socket (errno in the cause).
 */
export function getPeerCred(fd: number): PeerCred {
  return callAddon('SO_PEERCRED', (a) => a.getPeerCred(fd))
}

/**
 * SO_PEERGROUPS: the peer's supplementary groups as of its `connect()`.
 * @throws ERR_PEER_UNAUTHORIZED on failure (errno in the cause).
 */
export function getPeerGroups(fd: number): readonly number[] {
  return callAddon('SO_PEERGROUPS', (a) => a.getPeerGroups(fd))
}

/**
 * SO_PEERPIDFD (Linux ≥ 6.5): a pidfd for the very process that connected, immune to pid reuse.
 * The caller owns it and must {@link closeFd} it.
 * @throws ERR_PEER_UNAUTHORIZED; `errnoOf(err) === 'ENOPROTOOPT'` on kernels without it.
 */
export function getPeerPidfd(fd: number): number {
  return callAddon('SO_PEERPIDFD', (a) => a.getPeerPidfd(fd))
}

/**
 * pidfd_open(2): a pidfd for whichever process holds `pid` now (racy: see process-facts.ts).
 * @throws ERR_PEER_UNAUTHORIZED; `errnoOf(err) === 'ESRCH'` when there is no such process.
 */
export function pidfdOpen(pid: number): number {
  return callAddon('pidfd_open', (a) => a.pidfdOpen(pid))
}

/**
 * Whether the process behind a pidfd still exists (a zombie counts: its pid cannot be reused yet).
 * @throws ERR_PEER_UNAUTHORIZED when the pidfd is invalid.
 */
export function pidfdIsAlive(pidfd: number): boolean {
  return callAddon('pidfd_send_signal', (a) => a.pidfdIsAlive(pidfd))
}

/**
 * close(2) for fds this module handed out (pidfds).
 * @throws ERR_PEER_UNAUTHORIZED; `errnoOf(err) === 'EBADF'` when already closed.
 */
export function closeFd(fd: number): void {
  callAddon('close', (a) => a.closeFd(fd))
}

/**
 * The OS fd of a socket accepted by a `net.Server` listening on a Unix path.
 *
 * Relies on Node internals: `socket._handle` is the libuv `Pipe` wrap, whose `fd` getter returns
 * the descriptor on POSIX (stable since Node 0.x, not public API). The fd stays owned by Node: never
 * close it; use it only while the socket is open.
 * @throws ERR_PEER_UNAUTHORIZED when the socket has no open handle.
 */
export function fdOf(socket: Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0) {
    throw new IdentityError('ERR_PEER_UNAUTHORIZED', 'socket has no usable file descriptor')
  }
  return fd
}

let peerPidfdProbe: Promise<boolean> | undefined

/**
 * Whether this kernel supports SO_PEERPIDFD, checked once on a throwaway abstract-namespace socket
 * pair; the result is cached. Use it to log at startup that attestation will be weaker without it.
 * @throws ERR_PEER_UNAUTHORIZED when the addon cannot be loaded.
 */
export function hasPeerPidfd(): Promise<boolean> {
  loadAddon()
  peerPidfdProbe ??= probePeerPidfd().catch((err: unknown) => {
    peerPidfdProbe = undefined
    throw err
  })
  return peerPidfdProbe
}

async function probePeerPidfd(): Promise<boolean> {
  const path = `\0tessera-peerpidfd-probe-${process.pid}-${Math.random().toString(36).slice(2)}`
  let client: Socket | undefined
  const server: Server = createServer({ pauseOnConnect: true })
  try {
    const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve))
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(path, resolve))
    client = netConnect(path)
    client.on('error', () => {})
    const socket = await accepted
    try {
      closeFd(getPeerPidfd(fdOf(socket)))
      return true
    } catch (err) {
      if (errnoOf(err) === 'ENOPROTOOPT') return false
      throw err
    } finally {
      socket.destroy()
    }
  } finally {
    client?.destroy()
    server.close()
  }
}
