import { createHash } from 'node:crypto'
import { appendFile, copyFile, mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { spawnPiped, untilEnd } from '../helpers/child-process.js'
import { isRoot, jsonOf } from '../helpers/processes.js'
import { openForOtherUsers, PROBE_PATH, type probe, type Stack, startStack } from '../helpers/stack.js'

interface PendingJson {
  readonly id: string
  readonly exe_path: string
  readonly sha256: string
  readonly uid: number
  readonly state: string
  readonly change: string
  readonly previous_request_id: string
  readonly previous_sha256: string
  readonly previous_uid: number
}

async function until<T>(what: string, get: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await get()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

const sha256Of = async (path: string) =>
  createHash('sha256')
    .update(await readFile(path))
    .digest('hex')

/** Runs the one-shot probe (an X509-SVID fetch) under `exe`, a copy of node. */
async function probeAs(exe: string, stack: Stack, as: { uid: number; gid: number } | object = {}) {
  const { stdout, stderr } = await untilEnd(spawnPiped(exe, [PROBE_PATH, stack.socketPath, 'x509'], as))
  const line = stdout.trim().split('\n').pop()
  if (!line) throw new Error(`the probe printed nothing: ${stderr}`)
  return JSON.parse(line) as Awaited<ReturnType<typeof probe>>
}

describe('re-consent', () => {
  let stack: Stack
  beforeAll(async () => {
    stack = await startStack({})
  })
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') console.log(stack.output())
  })
  afterAll(async () => {
    await stack?.stop()
  })

  /** The pending (not decided) request of `exe` whose hash is `sha256`, once the agent reported it. */
  const pendingOf = (exe: string, sha256: string) =>
    until(`a pending request of ${exe} with hash ${sha256.slice(0, 12)}`, async () => {
      const { requests } = jsonOf<{ requests: PendingJson[] }>(
        await stack.cli(['approval', 'list', '--output', 'json']),
      )
      return requests.find((r) => r.exe_path === exe && r.sha256 === sha256)
    })
  const approve = async (id: string, extra: string[] = []) => {
    const args = [
      'approval',
      'approve',
      '--id',
      id,
      '--template',
      'spiffe://{trust_domain}/agents/{exe_name}',
    ]
    const r = await stack.cli([...args, ...extra])
    expect(r.code, r.stderr).toBe(0)
  }

  it('a rebuilt binary at an approved path is a new request naming the old hash; an expired approval prompts again, saying so', async () => {
    const bin = join(stack.dir, 'bin')
    await mkdir(bin, { recursive: true })
    const exe = join(bin, 'rebuilt-tool')
    await copyFile(process.execPath, exe)
    const oldHash = await sha256Of(exe)

    expect(await probeAs(exe, stack)).toMatchObject({ ok: false, errorCode: 'ERR_NO_IDENTITY' })
    const first = await pendingOf(exe, oldHash)
    expect(first.change).toBe('')
    await approve(first.id)
    await until('the approved binary served', async () => ((await probeAs(exe, stack)).ok ? true : undefined))

    // "Rebuilt": the same path, other bytes (a node binary still runs with bytes appended).
    await appendFile(exe, Buffer.from('rebuilt\n'))
    const newHash = await sha256Of(exe)
    expect(newHash).not.toBe(oldHash)
    expect(await probeAs(exe, stack)).toMatchObject({ ok: false, errorCode: 'ERR_NO_IDENTITY' })
    const rebuilt = await pendingOf(exe, newHash)
    expect(rebuilt).toMatchObject({
      change: 'binary',
      previous_request_id: first.id,
      previous_sha256: oldHash,
      previous_uid: process.getuid?.(),
    })
    const shown = await stack.cli(['approval', 'show', '--id', rebuilt.id])
    expect(shown.stdout).toContain(`Changed       : the binary: its SHA-256 was ${oldHash}`)

    // Approved for 2 s: served, then refused again once it expired, and a new request says why.
    await approve(rebuilt.id, ['--for', '2s'])
    await until('the rebuilt binary served', async () => ((await probeAs(exe, stack)).ok ? true : undefined))
    // The program keeps asking, as a real one retries (the agent may stop serving a little before
    // the entry's expiry, when a refusal still counts toward the approved request).
    const again = await until('a new request after the expiry', async () => {
      await probeAs(exe, stack)
      const { requests } = jsonOf<{ requests: PendingJson[] }>(
        await stack.cli(['approval', 'list', '--output', 'json']),
      )
      return requests.find((r) => r.exe_path === exe && r.id !== rebuilt.id)
    })
    expect(again).toMatchObject({
      change: 'expired',
      previous_request_id: rebuilt.id,
      previous_sha256: newHash,
    })
    expect((await stack.cli(['approval', 'show', '--id', again.id])).stdout).toContain(
      'Changed       : the approval expired',
    )
  })

  it.skipIf(!isRoot)(
    'an approved binary run by another user is a new request naming the previous uid (root only: runs it as uid 65534)',
    async () => {
      await openForOtherUsers(stack)
      const exe = join(stack.dir, 'bin', 'shared-tool')
      await copyFile(process.execPath, exe)
      await appendFile(exe, Buffer.from('shared\n')) // a hash of its own in this stack
      const hash = await sha256Of(exe)
      await probeAs(exe, stack)
      const mine = await pendingOf(exe, hash)
      await approve(mine.id)
      await until('served as root', async () => ((await probeAs(exe, stack)).ok ? true : undefined))

      const nobody = { uid: 65534, gid: 65534 }
      expect(await probeAs(exe, stack, nobody)).toMatchObject({ ok: false, errorCode: 'ERR_NO_IDENTITY' })
      const theirs = await until('the request of uid 65534', async () => {
        const r = await pendingOf(exe, hash)
        return r.uid === 65534 ? r : undefined
      })
      expect(theirs).toMatchObject({
        change: 'user',
        previous_request_id: mine.id,
        previous_sha256: hash,
        previous_uid: process.getuid?.(),
      })
      expect((await stack.cli(['approval', 'show', '--id', theirs.id])).stdout).toContain(
        `Changed       : the user: it ran as uid ${process.getuid?.()}`,
      )
    },
  )
})
