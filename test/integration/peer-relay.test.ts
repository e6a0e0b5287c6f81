import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { setPassCredentials } from '../../common/peercred/peer-binding.js'
import { relayConnection } from '../../common/peercred/peer-relay.js'
import { fdOf, getPeerCred } from '../../common/peercred/peercred.js'
import { waitUntil } from '../helpers/binding-attack.js'
import { makeTempDir, removeDir } from '../helpers/processes.js'

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

/** Reads everything until the end, pausing now and then so that the writer meets backpressure. */
function readAllSlowly(sock: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let n = 0
    sock.on('data', (d: Buffer) => {
      chunks.push(d)
      if (++n % 16 === 0) {
        sock.pause()
        setTimeout(() => sock.resume(), 2)
      }
    })
    sock.on('end', () => resolve(Buffer.concat(chunks)))
    sock.on('error', reject)
  })
}

describe('the credential-checking connection relay (native/peer-relay.cc)', () => {
  let dir: string
  let server: Server
  let path: string
  const foreign: number[] = []
  let onInner: (inner: Socket) => void = () => {}

  beforeEach(async () => {
    dir = await makeTempDir('tessera-relay-')
    path = join(dir, 'relay.sock')
    foreign.length = 0
    server = createServer({ pauseOnConnect: true }, (socket) => {
      const { pid } = getPeerCred(fdOf(socket))
      const inner = relayConnection(socket, pid, (sender) => foreign.push(sender))
      onInner(inner)
    })
    await new Promise<void>((resolve) => server.listen(path, resolve))
    setPassCredentials((server as unknown as { _handle: { fd: number } })._handle.fd)
  })

  afterEach(async () => {
    await new Promise((resolve) => server.close(resolve))
    await removeDir(dir)
  })

  const connectClient = async () => {
    const client = netConnect(path)
    await once(client, 'connect')
    return client
  }

  it('carries 8 MiB each way intact through backpressure, and passes the end of stream on', async () => {
    onInner = (inner) => inner.pipe(inner) // echo, half-close included
    const client = await connectClient()
    const payload = randomBytes(8 * 1024 * 1024)
    const back = readAllSlowly(client)
    client.end(payload)
    expect(sha(await back)).toBe(sha(payload))
  })

  it('delivers what the server handed over just before it destroyed its socket', async () => {
    const last = randomBytes(1024 * 1024)
    onInner = (inner) => {
      inner.write(last, () => inner.destroy())
    }
    const client = await connectClient()
    const got = await readAllSlowly(client)
    expect(sha(got)).toBe(sha(last))
  })

  it('refuses bytes from any process but the connector, and closes the connection', async () => {
    const received: Buffer[] = []
    onInner = (inner) => inner.on('data', (d: Buffer) => received.push(d))
    const client = await connectClient()
    client.write('from the connector\n')
    await waitUntil(() => received.length > 0)
    const child = spawn('sh', ['-c', 'printf intruder >&3'], {
      stdio: ['ignore', 'ignore', 'ignore', client],
    })
    await once(child, 'exit')
    expect(await waitUntil(() => foreign.length > 0)).toBe(true)
    expect(foreign).toEqual([child.pid])
    expect(Buffer.concat(received).toString()).toBe('from the connector\n')
    // Node stops reading a socket handed to a child as stdio: see the close as a failing write.
    let broken = false
    client.on('error', () => {
      broken = true
    })
    client.on('close', () => {
      broken = true
    })
    const isBroken = () => {
      if (!broken) client.write('after\n')
      return broken
    }
    expect(await waitUntil(isBroken)).toBe(true)
  })
})
