import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { isIP, type Socket } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { IdentityError } from '../../lib/core/errors.js'

/** The part of the native addon (native/sock-diag.cc) this module uses. */
interface SockDiagAddon {
  tcpSocketUid(
    family: 4 | 6,
    localAddress: string,
    localPort: number,
    remoteAddress: string,
    remotePort: number,
  ): number | null
}

const ADDON_PATH = join('build', 'Release', 'peercred.node')
let addon: SockDiagAddon | undefined

/** Loads the addon once, walking up from this file to the package root (as `peercred.ts` does). */
function loadAddon(): SockDiagAddon {
  if (addon !== undefined) return addon
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i <= 6; i++) {
    const candidate = join(dir, ADDON_PATH)
    if (existsSync(candidate)) {
      addon = createRequire(import.meta.url)(candidate) as SockDiagAddon
      return addon
    }
    dir = dirname(dir)
  }
  throw new IdentityError('ERR_PEER_UNAUTHORIZED', `peer credentials addon not built (${ADDON_PATH})`)
}

/** `::ffff:127.0.0.1` → `127.0.0.1`: an IPv4 client of a dual-stack listener owns an IPv4 socket. */
function unmapped(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address
}

/** True for 127.0.0.0/8 and ::1 (IPv4-mapped included): a peer on this host. */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false
  const plain = unmapped(address)
  return plain === '::1' || (isIP(plain) === 4 && plain.startsWith('127.'))
}

/**
 * The uid of the local process that owns the other end of a TCP connection, from the kernel's
 * socket diagnostics (NETLINK_SOCK_DIAG, inet_diag): the client's socket is looked up by its exact
 * 4-tuple (its address and port, then ours) in this network namespace. Undefined when there is no
 * such socket: the peer is on another host, or its socket is already gone.
 * @throws ERR_PEER_UNAUTHORIZED when the addon is missing or the kernel refuses the query
 * @example
 * server.on('connection', (socket) => console.log(tcpPeerUid(socket)))
 */
export function tcpPeerUid(socket: Socket): number | undefined {
  const { remoteAddress, remotePort, localAddress, localPort } = socket
  if (remoteAddress === undefined || remotePort === undefined) return undefined
  if (localAddress === undefined || localPort === undefined) return undefined
  const peer = unmapped(remoteAddress)
  const own = unmapped(localAddress)
  const family = isIP(peer)
  if ((family !== 4 && family !== 6) || isIP(own) !== family) return undefined
  try {
    return loadAddon().tcpSocketUid(family, peer, remotePort, own, localPort) ?? undefined
  } catch (err) {
    if (err instanceof IdentityError) throw err
    throw new IdentityError('ERR_PEER_UNAUTHORIZED', 'the socket diagnostics query failed', { cause: err })
  }
}

/** Throttle keys by connection: a TCP connection's peer cannot change. */
const keys = new WeakMap<Socket, string>()

/**
 * The key the gateway throttles a connection's failed authentications under (DESIGN §10): `uid:<n>`
 * for a peer on this host, whatever address it connects from (any loopback address, or one of the
 * host's own); `local:unattributed` for a loopback peer whose socket could not be found (it closed
 * at once); `remote:<address>` for a peer on another host, where the address is all there is.
 * Computed once per connection.
 * @example
 * createGuard({ ...options, peerKey: (request) => localPeerKey(request.socket) })
 */
export function localPeerKey(socket: Socket): string {
  const known = keys.get(socket)
  if (known !== undefined) return known
  let uid: number | undefined
  try {
    uid = tcpPeerUid(socket)
  } catch {
    uid = undefined
  }
  const key =
    uid !== undefined
      ? `uid:${uid}`
      : isLoopbackAddress(socket.remoteAddress)
        ? 'local:unattributed'
        : `remote:${socket.remoteAddress ?? 'unknown'}`
  keys.set(socket, key)
  return key
}
