import { once } from 'node:events'
import { chmod, mkdir, readFile, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { connect, createServer, type Server, Socket } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  closeFd,
  errnoOf,
  fdOf,
  getPeerCred,
  getPeerGroups,
  getPeerPidfd,
  hasPeerPidfd,
  pidfdIsAlive,
  pidfdOpen,
} from '../../common/peercred/peercred.js'
import { readProcessFacts } from '../../common/peercred/process-facts.js'
import { isIdentityError } from '../../lib/core/errors.js'
import { spawnHolder } from '../helpers/peer-child.js'
import { makeTempDir, removeDir } from '../helpers/processes.js'

const isRoot = process.getuid?.() === 0
const asRoot = isRoot ? it : it.skip
if (!isRoot) console.warn('peercred: not root, skipping the tests that spawn peers as uid 65534')

let dir: string
let path: string
let server: Server
const accepted: Socket[] = []
const waiting: ((s: Socket) => void)[] = []

/** The next connection the paused test server accepts. */
function nextConnection(): Promise<Socket> {
  const ready = accepted.shift()
  return ready ? Promise.resolve(ready) : new Promise((resolve) => waiting.push(resolve))
}

/** Connects from this process; returns the server side of the connection. */
async function connectSelf(): Promise<{ client: Socket; socket: Socket }> {
  const client = connect(path)
  const socket = await nextConnection()
  return { client, socket }
}

beforeAll(async () => {
  dir = await makeTempDir('tessera-peercred-')
  await chmod(dir, 0o755) // so that a peer running as 65534 can reach the socket
  path = join(dir, 'peer.sock')
  server = createServer({ pauseOnConnect: true }, (socket) => {
    const waiter = waiting.shift()
    if (waiter) waiter(socket)
    else accepted.push(socket)
  })
  server.listen(path)
  await once(server, 'listening')
  await chmod(path, 0o777)
})

afterAll(async () => {
  server.close()
  await removeDir(dir)
})

describe('peer credentials of our own process', () => {
  it('reads SO_PEERCRED, SO_PEERGROUPS and a live pidfd', async () => {
    const { client, socket } = await connectSelf()
    const fd = fdOf(socket)
    expect(getPeerCred(fd)).toEqual({ pid: process.pid, uid: process.getuid?.(), gid: process.getgid?.() })
    // process.getgroups() adds the egid; the Groups: line is exactly the supplementary groups.
    const groupsLine = (await readFile('/proc/self/status', 'utf8')).match(/^Groups:(.*)$/m)?.[1] ?? ''
    expect(getPeerGroups(fd)).toEqual(groupsLine.trim().split(/\s+/).filter(Boolean).map(Number))
    if (await hasPeerPidfd()) {
      const pidfd = getPeerPidfd(fd)
      expect(pidfdIsAlive(pidfd)).toBe(true)
      closeFd(pidfd)
    }
    client.destroy()
    socket.destroy()
  })

  it('reads the process facts, with and without SO_PEERPIDFD', async () => {
    const { client, socket } = await connectSelf()
    for (const usePeerPidfd of [true, false]) {
      const facts = await readProcessFacts(fdOf(socket), { usePeerPidfd })
      expect(facts).toMatchObject({ pid: process.pid, uid: process.getuid?.(), gid: process.getgid?.() })
      expect(facts.exe).toBe(await realpath(process.execPath))
      expect(facts.cgroups.length).toBeGreaterThan(0)
      expect(facts.weak).toBe(!usePeerPidfd || !(await hasPeerPidfd()))
      expect(facts.isAlive()).toBe(true)
      facts.close()
      facts.close()
      expect(facts.isAlive()).toBe(false)
    }
    client.destroy()
    socket.destroy()
  })

  it('reports failures with the errno name', async () => {
    expect(typeof (await hasPeerPidfd())).toBe('boolean')
    const pidfd = pidfdOpen(process.pid)
    const notOpen = 999_999 // never reuse a closed fd number here: it may belong to someone else by now
    const attempts: [() => unknown, string][] = [
      [() => getPeerCred(pidfd), 'ENOTSOCK'],
      [() => getPeerPidfd(pidfd), 'ENOTSOCK'],
      [() => closeFd(notOpen), 'EBADF'],
      [() => pidfdIsAlive(notOpen), 'EBADF'],
      [() => getPeerGroups(notOpen), 'EBADF'],
      [() => pidfdOpen(2 ** 31 - 2), 'ESRCH'],
    ]
    for (const [attempt, errno] of attempts) {
      const err = catchError(attempt)
      expect(isIdentityError(err, 'ERR_PEER_UNAUTHORIZED')).toBe(true)
      expect(errnoOf(err)).toBe(errno)
    }
    closeFd(pidfd)
    expect(
      isIdentityError(
        catchError(() => fdOf(new Socket())),
        'ERR_PEER_UNAUTHORIZED',
      ),
    ).toBe(true)
  })
})

describe('a peer running as another user', () => {
  asRoot('is seen with its uid, gid, pid, exe and groups', async () => {
    const peer = await spawnHolder(path, { uid: 65534, gid: 65534, groups: [65534, 100, 4242] })
    const socket = await nextConnection()
    const fd = fdOf(socket)
    expect(getPeerCred(fd)).toEqual({ pid: peer.pid, uid: 65534, gid: 65534 })
    expect([...getPeerGroups(fd)].sort()).toEqual([100, 4242, 65534])
    const facts = await readProcessFacts(fd)
    expect(facts).toMatchObject({ pid: peer.pid, uid: 65534, gid: 65534, groups: [100, 4242, 65534] })
    expect(facts.exe).toBe(await realpath(process.execPath))
    facts.close()
    await peer.exit()
    socket.destroy()
  })

  asRoot('spawned with uid/gid options, has no supplementary groups', async () => {
    const peer = await spawnHolder(path, { uid: 65534, gid: 65534 })
    const socket = await nextConnection()
    const facts = await readProcessFacts(fdOf(socket))
    expect(facts).toMatchObject({ pid: peer.pid, uid: 65534, gid: 65534, groups: [] })
    expect(getPeerGroups(fdOf(socket))).toEqual([])
    facts.close()
    await peer.exit()
    socket.destroy()
  })
})

describe('an exited peer', () => {
  it('has a dead pidfd once it exits', async () => {
    const peer = await spawnHolder(path)
    const socket = await nextConnection()
    const pidfd = pidfdOpen(peer.pid)
    expect(pidfdIsAlive(pidfd)).toBe(true)
    await peer.exit()
    expect(pidfdIsAlive(pidfd)).toBe(false)
    closeFd(pidfd)
    socket.destroy()
  })

  it.each([true, false])(
    'is refused when attested after it exits (usePeerPidfd %s)',
    async (usePeerPidfd) => {
      const peer = await spawnHolder(path)
      const socket = await nextConnection()
      await peer.exit()
      const err = await readProcessFacts(fdOf(socket), { usePeerPidfd }).catch((e: unknown) => e)
      expect(isIdentityError(err, 'ERR_PEER_UNAUTHORIZED')).toBe(true)
      socket.destroy()
    },
  )

  it('with a live attestation, turns not alive when it exits later', async () => {
    const peer = await spawnHolder(path)
    const socket = await nextConnection()
    const facts = await readProcessFacts(fdOf(socket))
    expect(facts.isAlive()).toBe(true)
    await peer.exit()
    expect(facts.isAlive()).toBe(false)
    facts.close()
    socket.destroy()
  })
})

describe('HOST_PROC override', () => {
  /** A fake /proc/<our pid> under a temp root. */
  async function fakeProc(status: string, cgroup: string): Promise<string> {
    const root = await makeTempDir('tessera-proc-')
    const pidDir = join(root, String(process.pid))
    await mkdir(pidDir)
    await writeFile(join(pidDir, 'status'), status)
    await writeFile(join(pidDir, 'cgroup'), cgroup)
    await writeFile(join(pidDir, 'stat'), `${process.pid} (odd ) name) S ${'1 '.repeat(18)}12345 0\n`)
    // exe names a real file: its (dev, inode) is part of the facts.
    await writeFile(join(root, 'fake-tool'), '')
    await symlink(join(root, 'fake-tool'), join(pidDir, 'exe'))
    return root
  }
  const uid = process.getuid?.() ?? 0
  const gid = process.getgid?.() ?? 0
  const status = (u: number) => `Name:\tx\nUid:\t7\t${u}\t7\t7\nGid:\t8\t${gid}\t8\t8\nGroups:\t10 20 \n`

  it.each([true, false])('reads facts under procRoot (usePeerPidfd %s)', async (usePeerPidfd) => {
    const procRoot = await fakeProc(status(uid), '12:cpu,cpuacct:/a:b\n0::/system.slice/x.service\n')
    const { client, socket } = await connectSelf()
    const facts = await readProcessFacts(fdOf(socket), { procRoot, usePeerPidfd })
    expect(facts).toMatchObject({ uid, gid, groups: [10, 20], exe: join(procRoot, 'fake-tool') })
    const tool = await stat(join(procRoot, 'fake-tool'))
    expect(facts.exeId).toEqual({ dev: tool.dev, ino: tool.ino })
    expect(facts.cgroups).toEqual([
      { hierarchyId: 12, controllers: ['cpu', 'cpuacct'], path: '/a:b' },
      { hierarchyId: 0, controllers: [], path: '/system.slice/x.service' },
    ])
    facts.close()
    client.destroy()
    socket.destroy()
    await rm(procRoot, { recursive: true })
  })

  it.each([
    ['an effective uid other than SO_PEERCRED', status(uid + 1), '0::/\n', {}],
    [
      'a status file over the size bound',
      status(uid) + 'x'.repeat(2000),
      '0::/\n',
      { maxProcFileBytes: 1024 },
    ],
    ['a malformed cgroup file', status(uid), 'garbage\n', {}],
  ])('refuses %s', async (_what, statusText, cgroup, options) => {
    const procRoot = await fakeProc(statusText, cgroup)
    const { client, socket } = await connectSelf()
    const err = await readProcessFacts(fdOf(socket), { procRoot, ...options }).catch((e: unknown) => e)
    expect(isIdentityError(err, 'ERR_PEER_UNAUTHORIZED')).toBe(true)
    client.destroy()
    socket.destroy()
    await rm(procRoot, { recursive: true })
  })
})

function catchError(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  throw new Error('expected an error')
}
