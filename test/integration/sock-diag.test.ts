import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer, connect as netConnect, type Socket } from 'node:net'
import { networkInterfaces } from 'node:os'
import { describe, expect, it } from 'vitest'
import { isLoopbackAddress, localPeerKey, tcpPeerUid } from '../../common/peercred/sock-diag.js'

/**
 * NETLINK_SOCK_DIAG through the native addon: the uid that owns the other end of a loopback TCP
 * connection, for IPv4, IPv6 and a dual-stack listener, with real client processes of another uid.
 */

const IS_ROOT = process.getuid?.() === 0
const SKIPPED = 'sock-diag other-uid cases SKIPPED: they need root to run a client as uid 65534'
if (!IS_ROOT) console.warn(SKIPPED)
const NOBODY = 65534
/** One of this host's own non-loopback IPv4 addresses, if it has one. */
const HOST_ADDRESS = Object.values(networkInterfaces())
  .flat()
  .find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address

/** Listens on `host`, lets `connectClient` connect, and returns what the server learnt of the peer. */
async function peerOf(host: string, connectClient: (port: number) => Promise<unknown>) {
  const accepted: Array<{ uid: number | undefined; key: string; address: string | undefined }> = []
  const server = createServer((socket: Socket) => {
    accepted.push({ uid: tcpPeerUid(socket), key: localPeerKey(socket), address: socket.remoteAddress })
    socket.end()
  })
  server.listen(0, host)
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  try {
    await connectClient(port)
    return accepted[0]
  } finally {
    server.close()
  }
}

/** Connects from this process and waits for the server to hang up. */
function connectHere(host: string, localAddress?: string) {
  return async (port: number) => {
    const socket = netConnect({ host, port, ...(localAddress !== undefined && { localAddress }) })
    socket.resume()
    await once(socket, 'close')
  }
}

/** Connects from a child process running as uid 65534. */
function connectAsNobody(host: string, localAddress: string) {
  return async (port: number) => {
    const script = `const s = require('node:net').connect({ host: ${JSON.stringify(host)}, port: ${port}, localAddress: ${JSON.stringify(localAddress)} }); s.resume(); s.on('error', () => {})`
    const child = spawn(process.execPath, ['-e', script], { uid: NOBODY, gid: NOBODY, cwd: '/', env: {} })
    const [code] = await once(child, 'exit')
    expect(code).toBe(0)
  }
}

describe('tcpPeerUid (NETLINK_SOCK_DIAG)', () => {
  const me = process.getuid?.() ?? 0

  it.each([
    ['127.0.0.1', '127.0.0.1', undefined],
    ['127.0.0.1', '127.0.0.1', '127.0.0.2'],
    ['::1', '::1', undefined],
    ['::', '127.0.0.1', undefined],
  ])('a listener on %s, a client of this uid via %s (from %s)', async (listen, host, from) => {
    const peer = await peerOf(listen, connectHere(host, from))
    expect(peer).toMatchObject({ uid: me, key: `uid:${me}` })
  })

  it.skipIf(!IS_ROOT).each([
    ['127.0.0.1', '127.0.0.1', '127.0.0.1'],
    ['127.0.0.1', '127.0.0.1', '127.0.0.2'],
    ['::1', '::1', '::1'],
    ['::', '127.0.0.1', '127.0.0.3'],
  ])('a listener on %s, a client of uid 65534 via %s from %s', async (listen, host, from) => {
    const peer = await peerOf(listen, connectAsNobody(host, from))
    expect(peer).toMatchObject({ uid: NOBODY, key: `uid:${NOBODY}` })
  })

  it.skipIf(!IS_ROOT || HOST_ADDRESS === undefined)(
    'a client of uid 65534 through one of the host’s own addresses is still its uid',
    async () => {
      const address = HOST_ADDRESS as string
      const peer = await peerOf('0.0.0.0', connectAsNobody(address, address))
      expect(peer).toMatchObject({ uid: NOBODY, key: `uid:${NOBODY}` })
    },
  )

  it('loopback addresses', () => {
    for (const a of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1'])
      expect(isLoopbackAddress(a)).toBe(true)
    for (const a of ['10.0.0.1', '::ffff:10.0.0.1', 'fe80::1', undefined])
      expect(isLoopbackAddress(a)).toBe(false)
  })
})
