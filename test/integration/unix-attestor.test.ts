import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  chmod,
  copyFile,
  open,
  readFile,
  readlink,
  realpath,
  rename,
  unlink,
  writeFile,
} from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { UnixAttestor, type UnixAttestorOptions } from '../../agent/attest/unix/unix-attestor.js'
import { isIdentityError } from '../../lib/core/errors.js'
import { Selector, selectorsAdmit } from '../../lib/core/selector.js'
import {
  type ExePeer,
  type PeerServer,
  spawnNodePeer,
  spawnPythonExecer,
  startPeerServer,
} from '../helpers/exe-peer.js'
import { makeTempDir, removeDir } from '../helpers/processes.js'

const isRoot = process.getuid?.() === 0
const asRoot = isRoot ? it : it.skip
if (!isRoot) console.warn('unix-attestor: not root, skipping the test that spawns a peer as uid 65534')
const python = findPython()
const withPython = python ? it : it.skip
if (!python) console.warn('unix-attestor: no python3, skipping the exec-during-attestation test')

let dir: string
let server: PeerServer
let tool: string
let nodeBytes: Buffer
const peers: ExePeer[] = []
const attestors: UnixAttestor[] = []

const sha256Of = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')
const texts = (selectors: readonly Selector[]) => selectors.map(String)

function newAttestor(options: UnixAttestorOptions = {}): UnixAttestor {
  const attestor = new UnixAttestor(options)
  attestors.push(attestor)
  return attestor
}

async function spawnPeer(exe: string, runAs = {}): Promise<ExePeer> {
  const peer = await spawnNodePeer(server, exe, runAs)
  peers.push(peer)
  return peer
}

/** Writes `bytes` as an executable at `path` (the dir is world-readable so uid 65534 can run it). */
async function writeExecutable(path: string, bytes: Buffer): Promise<void> {
  await writeFile(path, bytes, { mode: 0o755 })
  await chmod(path, 0o755)
}

beforeAll(async () => {
  dir = await realpath(await makeTempDir('tessera-unix-attestor-'))
  await chmod(dir, 0o755)
  server = await startPeerServer(dir)
  nodeBytes = await readFile(process.execPath)
  tool = join(dir, 'tool')
  await copyFile(process.execPath, tool)
  await chmod(tool, 0o755)
})

afterAll(async () => {
  await Promise.all(peers.map((p) => p.exit()))
  await Promise.all(attestors.map((a) => a.close()))
  server.close()
  await removeDir(dir)
})

describe('selectors of a real process', () => {
  asRoot('gives uid, gid, names, path, sha256 and cgroup of a peer running as 65534', async () => {
    const peer = await spawnPeer(tool, { uid: 65534, gid: 65534 })
    const { selectors, exe } = await newAttestor().attestDetailed(peer.facts)
    const cgroup = (await readFile(`/proc/${peer.facts.pid}/cgroup`, 'utf8')).match(/^0::(.*)$/m)?.[1]
    expect(texts(selectors)).toEqual(
      expect.arrayContaining([
        'unix:uid:65534',
        'unix:gid:65534',
        `unix:user:${getentName('passwd', 65534)}`,
        `unix:group:${getentName('group', 65534)}`,
        `unix:path:${tool}`,
        `unix:sha256:${sha256Of(nodeBytes)}`,
        `unix:cgroup:${cgroup}`,
      ]),
    )
    expect(texts(selectors).filter((s) => s.startsWith('unix:supplementary_'))).toEqual([])
    expect(exe).toMatchObject({
      path: tool,
      isDeleted: false,
      hashOutcome: 'hashed',
      sizeBytes: nodeBytes.length,
    })
  })

  // How fast a cache hit is lives in `npm run bench` (Workload attestation): tests never time.
  it('serves a repeat caller from the hash cache, with the same selectors', async () => {
    const peer = await spawnPeer(tool)
    const attestor = newAttestor()
    const first = await attestor.attestDetailed(peer.facts)
    expect(first.exe.hashOutcome).toBe('hashed')
    for (let i = 0; i < 50; i++) {
      const again = await attestor.attestDetailed(peer.facts)
      expect(again.exe.hashOutcome).toBe('cached')
      expect(texts(again.selectors)).toEqual(texts(first.selectors))
    }
  })
})

describe('a binary replaced on disk while it runs', () => {
  it('cannot be rewritten in place: the kernel refuses writes to a running executable', async () => {
    await spawnPeer(tool)
    const err = await open(tool, 'r+').catch((e: unknown) => e)
    expect((err as NodeJS.ErrnoException).code).toBe('ETXTBSY')
  })

  it.each([
    [
      'renamed over',
      async (path: string, bytes: Buffer) => {
        await writeExecutable(`${path}.new`, bytes)
        await rename(`${path}.new`, path)
      },
    ],
    [
      'unlinked and written anew',
      async (path: string, bytes: Buffer) => {
        await unlink(path)
        await writeExecutable(path, bytes)
      },
    ],
  ])('%s: keeps the running hash; a new process gets the new one', async (_how, replace) => {
    const path = join(dir, `replaced-${peers.length}`)
    await writeExecutable(path, nodeBytes)
    const old = await spawnPeer(path)
    const before = await newAttestor().attestDetailed(old.facts)
    const oldSha = Selector.from('unix', `sha256:${sha256Of(nodeBytes)}`)
    expect(texts(before.selectors)).toContain(oldSha.toString())

    const newBytes = Buffer.concat([nodeBytes, Buffer.from('\0tessera')])
    await replace(path, newBytes)
    // A fresh attestor (empty cache) reads the old image through /proc/<pid>/exe.
    const after = await newAttestor().attestDetailed(old.facts)
    expect(after.exe).toMatchObject({
      path,
      isDeleted: true,
      hashOutcome: 'hashed',
      sha256: sha256Of(nodeBytes),
    })
    expect(texts(after.selectors)).toContain(`unix:path:${path}`)
    expect(selectorsAdmit([oldSha], after.selectors)).toBe(true)

    const fresh = await spawnPeer(path)
    const renewed = await newAttestor().attestDetailed(fresh.facts)
    expect(renewed.exe).toMatchObject({ path, isDeleted: false, sha256: sha256Of(newBytes) })
    expect(selectorsAdmit([oldSha], renewed.selectors)).toBe(false)
    expect(selectorsAdmit([Selector.from('unix', `path:${path}`)], renewed.selectors)).toBe(true)
  })
})

describe('hash limits', () => {
  it.each<[string, number, string]>([
    ['over the size limit', 1024, 'over-limit'],
    ['with hashing disabled', -1, 'disabled'],
    ['with no limit', 0, 'hashed'],
  ])('%s: hash outcome %s', async (_what, hashSizeLimitBytes, outcome) => {
    const peer = await spawnPeer(tool)
    const { selectors, exe } = await newAttestor({ hashSizeLimitBytes }).attestDetailed(peer.facts)
    expect(exe.hashOutcome).toBe(outcome)
    expect(texts(selectors).some((s) => s.startsWith('unix:sha256:'))).toBe(outcome === 'hashed')
    expect(texts(selectors)).toContain(`unix:path:${tool}`)
  })

  it('shares one hashing job between callers of the same image, and sheds the load beyond', async () => {
    const other = join(dir, 'other')
    await writeExecutable(other, Buffer.concat([nodeBytes, Buffer.from('other')]))
    const [a, b, c] = await Promise.all([spawnPeer(tool), spawnPeer(tool), spawnPeer(other)])
    const attestor = newAttestor({ maxPendingHashes: 1 })
    const same = await Promise.all([attestor.attestDetailed(a.facts), attestor.attestDetailed(b.facts)])
    expect(same.map((r) => r.exe.hashOutcome)).toEqual(['hashed', 'hashed'])
    const fresh = newAttestor({ maxPendingHashes: 1 })
    const results = await Promise.allSettled([fresh.attest(a.facts), fresh.attest(c.facts)])
    expect(results[0]?.status).toBe('fulfilled')
    const shed = results[1]?.status === 'rejected' ? results[1].reason : undefined
    expect(isIdentityError(shed, 'ERR_ATTESTATION_FAILED')).toBe(true)
  })
})

describe('refusals', () => {
  it('refuses a peer that exited after its facts were read', async () => {
    const peer = await spawnPeer(tool)
    peer.poke()
    await new Promise((resolve) => peer.child.once('exit', resolve))
    const err = await newAttestor()
      .attest(peer.facts)
      .catch((e: unknown) => e)
    expect(isIdentityError(err, 'ERR_ATTESTATION_FAILED')).toBe(true)
  })

  withPython('refuses a peer that executed another binary after its facts were read', async () => {
    const peer = await spawnPythonExecer(server, python ?? '')
    peers.push(peer)
    peer.poke()
    const sleepExe = await realpath('/bin/sleep')
    for (let i = 0; i < 200 && !(await exeOf(peer.facts.pid)).startsWith(sleepExe); i++) await delay(10)
    expect(peer.facts.isAlive()).toBe(true)
    const err = await newAttestor()
      .attest(peer.facts)
      .catch((e: unknown) => e)
    expect(isIdentityError(err, 'ERR_ATTESTATION_FAILED')).toBe(true)
  })
})

function getentName(db: 'passwd' | 'group', id: number): string {
  return execFileSync('getent', [db, String(id)], { encoding: 'utf8' }).split(':')[0] ?? ''
}

function findPython(): string | undefined {
  try {
    return execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim()
  } catch {
    return undefined
  }
}

function exeOf(pid: number): Promise<string> {
  return readlink(`/proc/${pid}/exe`).catch(() => '')
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
