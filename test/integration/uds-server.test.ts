import { spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { chmod, lstat, stat, writeFile } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import {
  type Client,
  credentials,
  type GrpcObject,
  loadPackageDefinition,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServiceClientConstructor,
  type ServiceError,
  type sendUnaryData,
  status,
} from '@grpc/grpc-js'
import { loadSync } from '@grpc/proto-loader'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  peerOf,
  requireAdmittedPeer,
  UdsServer,
  type UdsServerOptions,
} from '../../common/grpc/uds-server.js'
import { fdOf } from '../../common/peercred/peercred.js'
import { type ProcessFacts, readProcessFacts } from '../../common/peercred/process-facts.js'
import { isIdentityError } from '../../lib/core/errors.js'
import { errorCodeOf } from '../../lib/grpc/status.js'
import { ECHO_PROTO, runEchoClient } from '../helpers/peer-child.js'
import { makeTempDir, removeDir } from '../helpers/processes.js'

const isRoot = process.getuid?.() === 0
const asRoot = isRoot ? it : it.skip
if (!isRoot) console.warn('uds-server: not root, skipping the tests that run clients as other uids')

const proto = loadPackageDefinition(loadSync(ECHO_PROTO, { keepCase: true }))
const EchoClient = ((proto.tessera as GrpcObject).test as GrpcObject).Echo as ServiceClientConstructor
type EchoCall = ServerUnaryCall<{ text: string }, { text: string; peer: string }>
type Echoed = { text: string; peer: string }
type EchoStub = Client & {
  Echo(request: { text: string }, callback: (err: ServiceError | null, res: Echoed) => void): void
}

let dir: string
let sockPath: string
const servers: UdsServer<unknown>[] = []

beforeAll(async () => {
  dir = await makeTempDir('tessera-uds-')
  await chmod(dir, 0o755) // peers running as other uids must reach the socket
})
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close(100)))
})
afterAll(async () => {
  await removeDir(dir)
})

let n = 0
/** A UdsServer that attests with readProcessFacts and answers Echo with `uid:pid` of the caller. */
async function startEcho(
  overrides: Partial<UdsServerOptions<ProcessFacts>> = {},
  onCall: (call: EchoCall, reply: () => void) => void = (_call, reply) => reply(),
): Promise<UdsServer<ProcessFacts>> {
  n += 1
  sockPath = join(dir, `run-${n}`, 'api.sock')
  const uds = new UdsServer<ProcessFacts>({
    path: sockPath,
    dirMode: 0o755,
    socketMode: 0o777,
    admit: (socket) => readProcessFacts(fdOf(socket)),
    release: (facts) => facts.close(),
    ...overrides,
  })
  uds.grpc.addService(EchoClient.service, {
    Echo: (call: EchoCall, callback: sendUnaryData<Echoed>) => {
      const facts = uds.peerOf(call)
      const peer = facts ? `${facts.uid}:${facts.pid}` : 'none'
      expect(peerOf<ProcessFacts>(call)).toBe(facts)
      onCall(call, () => callback(null, { text: call.request.text, peer }))
    },
  })
  servers.push(uds as UdsServer<unknown>)
  await uds.listen()
  return uds
}

/** One Echo call from this process. */
function echoSelf(path: string, text = 'hi'): Promise<Echoed> {
  const client = new EchoClient(`unix:${path}`, credentials.createInsecure()) as unknown as EchoStub
  return new Promise<Echoed>((resolve, reject) => {
    client.Echo({ text }, (err: ServiceError | null, res: Echoed) => (err ? reject(err) : resolve(res)))
  }).finally(() => client.close())
}

/** Resolves once the server closes the connection (or rejects after a deadline). */
async function closedByServer(socket: Socket): Promise<void> {
  socket.on('error', () => {})
  socket.resume()
  const timer = setTimeout(() => socket.destroy(new Error('server kept the connection open')), 5000)
  await once(socket, 'close')
  clearTimeout(timer)
  expect(socket.errored?.message).not.toBe('server kept the connection open')
}

describe('per-call peer identity', () => {
  it('shows the handler the identity admitted for its own connection', async () => {
    await startEcho()
    const res = await echoSelf(sockPath, 'hello')
    expect(res).toEqual({ text: 'hello', peer: `${process.getuid?.()}:${process.pid}` })
  })

  asRoot('keeps two concurrent callers with different uids apart', async () => {
    const held: (() => void)[] = []
    await startEcho({}, (_call, reply) => {
      held.push(reply)
      if (held.length === 2) for (const r of held) r() // both calls are in flight at once
    })
    const [a, b] = await Promise.all([
      runEchoClient(sockPath, { uid: 65534, gid: 65534 }),
      runEchoClient(sockPath, { uid: 4242, gid: 4242 }),
    ])
    expect(a.result['peer']).toBe(`65534:${a.pid}`)
    expect(b.result['peer']).toBe(`4242:${b.pid}`)
  })

  it('releases the identity when the connection closes', async () => {
    const released: number[] = []
    const uds = await startEcho({
      release: (f) => {
        released.push(f.pid)
        f.close()
      },
    })
    await echoSelf(sockPath)
    await expect.poll(() => released).toEqual([process.pid])
    expect(uds.connectionCount).toBe(0)
  })
})

describe('the interceptor', () => {
  // A UdsServer's gRPC server binds no port: connections only arrive through its injector, after
  // admission and tagging, so an untagged call cannot be produced through UdsServer itself. Check
  // the interceptor on a plain grpc-js server bound to a Unix socket, whose connections are untagged.
  it('rejects calls on connections no UdsServer admitted', async () => {
    const plain = new Server({ interceptors: [requireAdmittedPeer] })
    let handled = 0
    plain.addService(EchoClient.service, {
      Echo: (_call: EchoCall, cb: sendUnaryData<Echoed>) => cb(null, { text: String(++handled), peer: '' }),
    })
    const path = join(dir, 'plain.sock')
    await new Promise<number>((res, rej) =>
      plain.bindAsync(`unix:${path}`, ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
    )
    const err = await echoSelf(path).catch((e: ServiceError) => e)
    expect((err as ServiceError).code).toBe(status.PERMISSION_DENIED)
    expect(errorCodeOf(err)).toBe('ERR_PEER_UNAUTHORIZED')
    expect(handled).toBe(0)
    plain.forceShutdown()
  })
})

describe('refusals and bounds', () => {
  it('closes a connection whose admission fails, and keeps serving', async () => {
    let refuse = true
    await startEcho({
      admit: async (socket) => {
        if (refuse) throw new Error('no')
        return readProcessFacts(fdOf(socket))
      },
    })
    await closedByServer(connect(sockPath))
    refuse = false
    await expect(echoSelf(sockPath)).resolves.toMatchObject({ text: 'hi' })
  })

  it('closes a connection that sends junk, and keeps serving others', async () => {
    const uds = await startEcho()
    const junk = connect(sockPath)
    junk.write(Buffer.from('this is not an HTTP/2 preface\r\n\r\n\x00\x01\x02'.repeat(8)))
    await closedByServer(junk)
    await expect(echoSelf(sockPath)).resolves.toMatchObject({ text: 'hi' })
    await expect.poll(() => uds.connectionCount).toBe(0)
  })

  it('drops connections past maxConnections', async () => {
    const uds = await startEcho({ maxConnections: 1 })
    const first = connect(sockPath)
    await expect.poll(() => uds.connectionCount).toBe(1)
    await closedByServer(connect(sockPath))
    first.destroy()
    await expect.poll(() => uds.connectionCount).toBe(0)
    await expect(echoSelf(sockPath)).resolves.toMatchObject({ text: 'hi' })
  })

  it('refuses an admission that outlasts admitTimeoutMs and releases its late identity', async () => {
    let released = 0
    await startEcho({
      admitTimeoutMs: 50,
      admit: async (socket) => {
        const facts = await readProcessFacts(fdOf(socket))
        await new Promise((r) => setTimeout(r, 150))
        return facts
      },
      release: (f) => {
        released++
        f.close()
      },
    })
    await closedByServer(connect(sockPath))
    await expect.poll(() => released).toBe(1)
  })

  it('answers RESOURCE_EXHAUSTED to a message over maxMessageBytes', async () => {
    await startEcho({ maxMessageBytes: 1024 })
    const err = await echoSelf(sockPath, 'x'.repeat(4096)).catch((e: ServiceError) => e)
    expect((err as ServiceError).code).toBe(status.RESOURCE_EXHAUSTED)
    await expect(echoSelf(sockPath, 'small')).resolves.toMatchObject({ text: 'small' })
  })
})

describe('the socket file', () => {
  it('applies the directory and socket modes, whatever the umask', async () => {
    await startEcho({ dirMode: 0o700, socketMode: 0o600 })
    expect((await stat(sockPath)).mode & 0o777).toBe(0o600)
    expect((await stat(join(sockPath, '..'))).mode & 0o777).toBe(0o700)
    await startEcho({ socketMode: 0o777 })
    expect((await stat(sockPath)).mode & 0o777).toBe(0o777)
  })

  it('replaces a stale socket file', async () => {
    const path = join(dir, 'stale', 'api.sock')
    // A process that exits without closing its server leaves the socket file behind.
    const script = `require('node:fs').mkdirSync(${JSON.stringify(join(dir, 'stale'))});
      require('node:net').createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`
    expect(spawnSync(process.execPath, ['-e', script]).status).toBe(0)
    expect((await lstat(path)).isSocket()).toBe(true)
    const uds = await startEcho({ path })
    await expect(echoSelf(path)).resolves.toMatchObject({ text: 'hi' })
    await uds.close()
    await expect(lstat(path)).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('refuses a path held by a live server or by a file that is not a socket', async () => {
    await startEcho()
    const second = new UdsServer({ ...optionsLike(sockPath), path: sockPath })
    expect(isIdentityError(await second.listen().catch((e: unknown) => e), 'ERR_CONFIG_INVALID')).toBe(true)
    const file = join(dir, 'not-a-socket')
    await writeFile(file, 'keep me')
    const third = new UdsServer({ ...optionsLike(file), path: file })
    expect(isIdentityError(await third.listen().catch((e: unknown) => e), 'ERR_CONFIG_INVALID')).toBe(true)
    expect((await lstat(file)).isFile()).toBe(true)
  })

  it('stops serving and removes the socket on close', async () => {
    const uds = await startEcho()
    const held = connect(sockPath).resume()
    const heldClosed = once(held, 'close')
    await expect.poll(() => uds.connectionCount).toBe(1)
    await uds.close(100)
    await heldClosed
    await expect(lstat(sockPath)).rejects.toMatchObject({ code: 'ENOENT' })
    expect(uds.connectionCount).toBe(0)
  })
})

function optionsLike(path: string): UdsServerOptions<string> {
  return { path, dirMode: 0o755, socketMode: 0o600, admit: async () => 'x' }
}
