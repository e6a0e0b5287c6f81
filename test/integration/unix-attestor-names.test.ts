import { createHash } from 'node:crypto'
import {
  mkdir,
  mkdtemp,
  readdir,
  readlink,
  realpath,
  rename,
  symlink,
  unlink,
  writeFile,
} from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { UnixAttestor, type UnixAttestorOptions } from '../../agent/attest/unix/unix-attestor.js'
import type { WarnLog } from '../../agent/attest/unix/user-db.js'
import { fdOf } from '../../common/peercred/peercred.js'
import { type ProcessFacts, readProcessFacts } from '../../common/peercred/process-facts.js'
import { ManualClock } from '../../lib/core/clock.js'
import { type PeerServer, startPeerServer } from '../helpers/exe-peer.js'
import { makeTempDir, removeDir } from '../helpers/processes.js'

const uid = process.getuid?.() ?? 0
const gid = process.getgid?.() ?? 0

let dir: string
let server: PeerServer
let client: Socket
let socket: Socket
let facts: ProcessFacts
const attestors: UnixAttestor[] = []

function newAttestor(options: UnixAttestorOptions, deps = {}): UnixAttestor {
  const attestor = new UnixAttestor(options, deps)
  attestors.push(attestor)
  return attestor
}

async function namesOf(attestor: UnixAttestor, using = facts): Promise<string[]> {
  const selectors = (await attestor.attest(using)).map(String)
  return selectors.filter((s) => /^unix:(user|group|supplementary_group):/.test(s))
}

beforeAll(async () => {
  dir = await realpath(await makeTempDir('tessera-unix-names-'))
  server = await startPeerServer(dir)
  client = connect(server.path) // this process is the peer
  socket = await server.next()
  facts = await readProcessFacts(fdOf(socket))
})

afterAll(async () => {
  await Promise.all(attestors.map((a) => a.close()))
  facts.close()
  client.destroy()
  socket.destroy()
  server.close()
  await removeDir(dir)
})

describe('user and group names', () => {
  async function etcWith(user: string, group: string): Promise<string> {
    const etc = await mkdtemp(join(dir, 'etc-'))
    await writeFile(join(etc, 'passwd'), `# users\n${user}:x:${uid}:${gid}::/:/bin/sh\n`)
    await writeFile(join(etc, 'group'), `${group}:x:${gid}:\n`)
    return etc
  }

  it('re-reads passwd and group when they change, renamed over or rewritten', async () => {
    const etc = await etcWith('first', 'crew')
    const attestor = newAttestor({ etcRoot: etc, namesRecheckIntervalMs: 0 })
    expect(await namesOf(attestor)).toEqual(expect.arrayContaining(['unix:user:first', 'unix:group:crew']))
    await writeFile(join(etc, 'passwd.new'), `second:x:${uid}:${gid}::/:/bin/sh\n`)
    await rename(join(etc, 'passwd.new'), join(etc, 'passwd'))
    await writeFile(join(etc, 'group'), `renamed-crew:x:${gid}:\n`)
    expect(await namesOf(attestor)).toEqual(
      expect.arrayContaining(['unix:user:second', 'unix:group:renamed-crew']),
    )
  })

  it('checks the files at most once per interval', async () => {
    const etc = await etcWith('before', 'g')
    const clock = new ManualClock(1_000_000)
    const attestor = newAttestor({ etcRoot: etc, namesRecheckIntervalMs: 1000 }, { clock })
    expect(await namesOf(attestor)).toContain('unix:user:before')
    await writeFile(join(etc, 'passwd'), `after:x:${uid}:${gid}::/:/bin/sh\n`)
    clock.advance(999)
    expect(await namesOf(attestor)).toContain('unix:user:before')
    clock.advance(1)
    expect(await namesOf(attestor)).toContain('unix:user:after')
  })

  it('omits the names, and warns once, while the files are missing', async () => {
    const etc = await etcWith('here', 'g')
    const warnings: string[] = []
    const log: WarnLog = { warn: (_fields, msg) => warnings.push(msg) }
    const attestor = newAttestor({ etcRoot: etc, namesRecheckIntervalMs: 0 }, { log })
    expect(await namesOf(attestor)).toContain('unix:user:here')
    await unlink(join(etc, 'passwd'))
    expect(await namesOf(attestor)).toEqual(['unix:group:g'])
    expect(await namesOf(attestor)).toEqual(['unix:group:g'])
    expect(warnings).toHaveLength(1)
    expect((await attestor.attest(facts)).map(String)).toContain(`unix:uid:${uid}`)
  })
})

describe('HOST_PROC', () => {
  it('reads the executable and cgroup under procRoot', async () => {
    const procRoot = join(dir, 'proc')
    const pidDir = join(procRoot, String(process.pid))
    await mkdir(pidDir, { recursive: true })
    const binary = join(dir, 'fake-tool')
    await writeFile(binary, 'not really an executable')
    await writeFile(
      join(pidDir, 'status'),
      `Uid:\t${uid}\t${uid}\t${uid}\t${uid}\nGid:\t${gid}\t${gid}\t${gid}\t${gid}\nGroups:\n`,
    )
    await writeFile(join(pidDir, 'cgroup'), '1:name=systemd:/v1\n0::/system.slice/fake.service\n')
    await symlink(binary, join(pidDir, 'exe'))
    const fake = await readProcessFacts(fdOf(socket), { procRoot })
    const { selectors, exe } = await newAttestor({ procRoot }).attestDetailed(fake)
    fake.close()
    expect(exe).toMatchObject({ path: binary, isDeleted: false, hashOutcome: 'hashed' })
    expect(selectors.map(String)).toEqual(
      expect.arrayContaining([
        `unix:path:${binary}`,
        `unix:sha256:${createHash('sha256').update('not really an executable').digest('hex')}`,
        'unix:cgroup:/system.slice/fake.service',
      ]),
    )
    expect(selectors.map(String)).not.toContain('unix:cgroup:/v1')
  })
})

describe('file descriptors', () => {
  /** Descriptors of this process open on its own executable: what a leak would leave behind. */
  async function exeFds(): Promise<number> {
    const links = await Promise.all(
      (await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')),
    )
    return links.filter((l) => l === facts.exe).length
  }

  it('are all closed after attestations that hash, hit the cache, or fail', async () => {
    const attestor = newAttestor({})
    const gone = { ...facts, isAlive: () => false } as ProcessFacts
    const results = await Promise.allSettled([
      ...Array.from({ length: 10 }, () => attestor.attest(facts)),
      ...Array.from({ length: 10 }, () => attestor.attest(gone)),
    ])
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(10)
    expect(await exeFds()).toBe(0)
  })
})
