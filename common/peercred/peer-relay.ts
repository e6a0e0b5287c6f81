import { Socket } from 'node:net'
import { IdentityError } from '../../lib/core/errors.js'
import { fdOf, peercredAddon } from './peercred.js'

interface RelayAddon {
  startRelay(
    fd: number,
    pid: number,
    onEvent: (kind: 'end' | 'error' | 'foreign', value: number) => void,
  ): { fd: number; close(): void }
}

/** How long a relay may go on delivering after the server side of the connection closed. */
const LINGER_MS = 5000

/**
 * Puts a credential-checking relay (native/peer-relay.cc) between an accepted connection and the
 * code that serves it: the returned socket carries the connection's bytes, but only those whose
 * kernel-stamped sender (SCM_CREDENTIALS) is `pid`, the process that connected. Bytes from any other
 * process are never delivered: `onForeign` gets that pid (0 when the kernel gave none) and both
 * sockets are destroyed. The listening socket must have SO_PASSCRED (peer-binding.ts
 * `setPassCredentials`) so that bytes sent before the relay started carry a sender too.
 *
 * The accepted socket must stay paused: the relay reads it. Destroying it stops the relay at once;
 * destroying the returned socket lets the relay deliver what was written to it first.
 * @throws ERR_PEER_UNAUTHORIZED when the relay cannot be started.
 */
export function relayConnection(socket: Socket, pid: number, onForeign: (pid: number) => void): Socket {
  let inner: Socket | undefined
  let relay: { fd: number; close(): void }
  try {
    relay = (peercredAddon() as RelayAddon).startRelay(fdOf(socket), pid, (kind, value) => {
      if (kind === 'foreign') onForeign(value)
      inner?.destroy()
      socket.destroy()
    })
  } catch (err) {
    throw new IdentityError('ERR_PEER_UNAUTHORIZED', 'connection relay failed to start', { cause: err })
  }
  inner = new Socket({ fd: relay.fd, readable: true, writable: true })
  // When the server side closes, the relay delivers what it wrote last, then ends by itself; a
  // caller that never reads cannot keep it open for longer than LINGER_MS.
  let lingering = false
  inner.once('close', () => {
    lingering = true
    socket.destroy()
    setTimeout(() => relay.close(), LINGER_MS).unref()
  })
  socket.once('close', () => {
    if (lingering) return
    relay.close()
    inner?.destroy()
  })
  inner.on('error', () => {})
  return inner
}
