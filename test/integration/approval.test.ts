import { createHash } from 'node:crypto'
import { createReadStream, realpathSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { userInfo } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type PipedChild, spawnPiped, stopChild, untilEnd } from '../helpers/child-process.js'
import { type CliResult, jsonOf } from '../helpers/processes.js'
import { PROBE_PATH, type probe, type Stack, startStack } from '../helpers/stack.js'
import { unknownBinary } from '../helpers/unknown-binary.js'

const WAITER_PATH = fileURLToPath(new URL('../helpers/waiting-workload.mjs', import.meta.url))

interface PendingJson {
  readonly id: string
  readonly agent_id: string
  readonly uid: number
  readonly user_name: string
  readonly gid: number
  readonly exe_path: string
  readonly sha256: string
  readonly cgroup: string
  readonly parent_exe: string
  readonly first_seen: number
  readonly last_seen: number
  readonly count: number
  readonly state: string
  readonly denied_until: number
  readonly entry_id: string
}
interface ListJson {
  readonly requests: PendingJson[]
  readonly dropped: number
}

function sha256Of(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256')
    createReadStream(path)
      .on('data', (d) => hash.update(d))
      .on('end', () => resolve(hash.digest('hex')))
      .on('error', reject)
  })
}

/** The stable code a failed CLI run printed. */
function errorCodeOf(r: CliResult): string | undefined {
  return r.code === 0 ? undefined : /ERR_[A-Z_]+/.exec(r.stderr)?.[0]
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

/** The cgroup the agent reports for a child of this process: v2's path, else the first hierarchy's. */
async function ownCgroup(): Promise<string> {
  const lines = (await readFile('/proc/self/cgroup', 'utf8')).split('\n').filter((l) => l !== '')
  const pathOf = (l: string) => l.slice(l.indexOf(':', l.indexOf(':') + 1) + 1)
  const v2 = lines.find((l) => l.startsWith('0::'))
  return v2 !== undefined ? pathOf(v2) : pathOf(lines[0] ?? '::')
}

const list = async (stack: Stack, all = false) =>
  jsonOf<ListJson>(await stack.cli(['approval', 'list', '--output', 'json', ...(all ? ['--all'] : [])]))
const requestFor = async (stack: Stack, exePath: string, all = false) =>
  (await list(stack, all)).requests.find((r) => r.exe_path === exePath)
const entryCount = async (stack: Stack) =>
  jsonOf<{ entries: unknown[] }>(await stack.cli(['entry', 'show', '--output', 'json'])).entries.length

describe('pending requests and approvals', () => {
  let stack: Stack
  const waiters: PipedChild[] = []

  beforeAll(async () => {
    stack = await startStack({ serverArgs: ['--deny-ttl', '1h'] })
  })
  afterEach(async (ctx) => {
    for (const w of waiters.splice(0)) await stopChild(w.child, 'SIGKILL')
    if (ctx.task.result?.state === 'fail') console.log(stack.output())
  })
  afterAll(async () => {
    await stack?.stop()
  })

  it('remembers a denial: the same binary asking again is no new request for the deny time', async () => {
    const exe = await unknownBinary(stack, 'denied-tool')
    const first = await probeAs(exe, stack)
    expect(first).toMatchObject({ ok: false, code: 7, errorCode: 'ERR_NO_IDENTITY' })
    const request = await until('the pending request', () => requestFor(stack, exe))
    const denied = jsonOf<PendingJson>(
      await stack.cli(['approval', 'deny', '--id', request.id, '--output', 'json']),
    )
    expect(denied).toMatchObject({ id: request.id, state: 'denied' })
    expect(denied.denied_until).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000) + 3500)
    for (let i = 0; i < 3; i++) expect(await probeAs(exe, stack)).toMatchObject({ ok: false, code: 7 })
    // Once the agent has reported those refusals (they count toward the denied request) ...
    const after = await until('the refusals after the denial counted', async () => {
      const r = await requestFor(stack, exe, true)
      return r !== undefined && r.count >= request.count + 3 ? r : undefined
    })
    // ... there is still one request for that binary, denied, and none pending.
    expect(after).toMatchObject({ id: request.id, state: 'denied' })
    expect((await list(stack, true)).requests.filter((r) => r.exe_path === exe)).toHaveLength(1)
    expect(await requestFor(stack, exe)).toBeUndefined()
    // Deciding it again is refused.
    const again = await stack.cli(['approval', 'deny', '--id', request.id])
    expect(errorCodeOf(again)).toBe('ERR_PENDING_DECIDED')
  })

  it('withdraws an approval: denying an approved request deletes its entry, revokes what it issued and remembers the denial', async () => {
    const exe = await unknownBinary(stack, 'withdrawn-tool')
    expect(await probeAs(exe, stack)).toMatchObject({ ok: false, errorCode: 'ERR_NO_IDENTITY' })
    const request = await until('the pending request', () => requestFor(stack, exe))
    const spiffeId = 'spiffe://tessera.local/agents/withdrawn-tool'
    const approved = jsonOf<{ entry: { id: string } }>(
      await stack.cli([
        'approval',
        'approve',
        '--id',
        request.id,
        '--spiffe-id',
        spiffeId,
        '--output',
        'json',
      ]),
    )
    await until('the approved binary served', async () => ((await probeAs(exe, stack)).ok ? true : undefined))
    const entries = await entryCount(stack)

    const withdrawn = await stack.cli(['approval', 'deny', '--id', request.id])
    expect(withdrawn.stdout).toContain(`Withdrew approval ${request.id}: entry ${approved.entry.id} deleted`)
    expect(await entryCount(stack)).toBe(entries - 1)
    const revocations = jsonOf<{ revocations: Array<{ kind: string; value: string }> }>(
      await stack.cli(['svid', 'revocations', '--output', 'json']),
    ).revocations
    expect(revocations).toContainEqual(expect.objectContaining({ kind: 'spiffe-id', value: spiffeId }))
    // Refused again, and no new request: the withdrawn one is denied for the deny time.
    await until('the binary refused again', async () => ((await probeAs(exe, stack)).ok ? undefined : true))
    const after = await until('the refusal counted toward the withdrawn request', async () => {
      const r = await requestFor(stack, exe, true)
      return r !== undefined && r.count > request.count ? r : undefined
    })
    expect(after).toMatchObject({ id: request.id, state: 'denied', entry_id: approved.entry.id })
    expect(await requestFor(stack, exe)).toBeUndefined()
    expect(errorCodeOf(await stack.cli(['approval', 'deny', '--id', request.id]))).toBe('ERR_PENDING_DECIDED')
  })

  it('refuses bad approvals with stable codes and creates nothing', async () => {
    const exe = await unknownBinary(stack, 'bad-input-tool')
    await probeAs(exe, stack)
    const request = await until('the pending request', () => requestFor(stack, exe))
    const entries = await entryCount(stack)
    const cases: Array<[string[], string]> = [
      [['--id', 'no-such-request', '--spiffe-id', 'spiffe://tessera.local/a'], 'ERR_PENDING_NOT_FOUND'],
      [['--id', request.id, '--spiffe-id', 'not a spiffe id'], 'ERR_ID_INVALID'],
      [['--id', request.id, '--spiffe-id', 'spiffe://tessera.local/tessera/server'], 'ERR_ENTRY_ID_RESERVED'],
      [
        ['--id', request.id, '--template', 'spiffe://{trust_domain}/tessera/agent/{exe_name}'],
        'ERR_ENTRY_ID_RESERVED',
      ],
      [['--id', request.id, '--spiffe-id', 'spiffe://elsewhere.test/a'], 'ERR_ENTRY_INVALID'],
      [['--id', request.id, '--template', 'spiffe://{trust_domain}/{nope}'], 'ERR_TEMPLATE_INVALID'],
      [['--id', request.id, '--template', 'spiffe://{trust_domain}/a}'], 'ERR_TEMPLATE_INVALID'],
      [['--id', request.id, '--template', 'no-scheme/{exe_name}'], 'ERR_TEMPLATE_INVALID'],
      [
        ['--id', request.id, '--spiffe-id', 'spiffe://tessera.local/a', '--template', 'x'],
        'ERR_REQUEST_INVALID',
      ],
      [['--id', request.id], 'ERR_REQUEST_INVALID'],
    ]
    for (const [args, code] of cases) {
      const r = await stack.cli(['approval', 'approve', ...args])
      expect({ args, code: errorCodeOf(r) }).toEqual({ args, code })
    }
    expect(await entryCount(stack)).toBe(entries)
    expect(await requestFor(stack, exe)).toMatchObject({ id: request.id, state: 'pending' })
    expect(errorCodeOf(await stack.cli(['approval', 'show', '--id', 'no-such-request']))).toBe(
      'ERR_PENDING_NOT_FOUND',
    )
  })
  // Last: its entry pins the hash every other binary of this stack shares (hard links of one copy).
  it('turns an unknown binary into a pending request with its facts; approving it serves the waiting process at once', async () => {
    const exe = await unknownBinary(stack, 'unknown-tool')
    const waiter = spawnPiped(exe, [WAITER_PATH, stack.socketPath])
    waiters.push(waiter)
    const request = await until('the pending request', () => requestFor(stack, exe))
    // Refused with PERMISSION_DENIED, as the spec says, and told to ask again soon: its approval is
    // pending. The waiter's X509Source follows that hint instead of its 1 s, 2 s … 30 s backoff.
    expect(JSON.parse(waiter.output.stdout().split('\n')[0] ?? '{}')).toMatchObject({
      event: 'denied',
      code: 7,
      errorCode: 'ERR_NO_IDENTITY',
      retryAfterMs: 500,
    })
    expect(request).toMatchObject({
      uid: process.getuid?.(),
      gid: process.getgid?.(),
      user_name: userInfo().username,
      exe_path: exe,
      sha256: await sha256Of(exe),
      cgroup: await ownCgroup(),
      parent_exe: realpathSync(process.execPath),
      state: 'pending',
      entry_id: '',
    })
    expect(request.agent_id).toMatch(/^spiffe:\/\/tessera\.local\/tessera\/agent\/join_token\//)
    expect(request.count).toBeGreaterThanOrEqual(1)
    expect(request.last_seen).toBeGreaterThanOrEqual(request.first_seen)
    // The same binary asking again and again stays one request, its count growing.
    const counted = await until('more refusals counted', async () => {
      const r = await requestFor(stack, exe)
      return r !== undefined && r.count > request.count ? r : undefined
    })
    expect(counted.id).toBe(request.id)
    expect((await list(stack)).requests.filter((r) => r.exe_path === exe)).toHaveLength(1)

    const before = Math.floor(Date.now() / 1000)
    const approve = [...['approval', 'approve', '--id', request.id, '--output', 'json']]
    approve.push('--template', 'spiffe://{trust_domain}/agents/{exe_name}', '--for', '1h')
    const approved = jsonOf<{ request: PendingJson; entry: Record<string, unknown> }>(
      await stack.cli(approve),
    )
    const approvedAtMs = Date.now()
    expect(approved.request).toMatchObject({ id: request.id, state: 'approved' })
    expect(approved.entry).toMatchObject({
      spiffe_id: 'spiffe://tessera.local/agents/unknown-tool',
      parent_id: request.agent_id,
      selectors: [
        { type: 'unix', value: `sha256:${request.sha256}` },
        { type: 'unix', value: `uid:${request.uid}` },
      ],
    })
    expect(approved.entry.expires_at).toBeGreaterThanOrEqual(before + 3600)
    expect(approved.entry.expires_at).toBeLessThanOrEqual(Math.ceil(approvedAtMs / 1000) + 3600)
    expect(approved.request.entry_id).toBe(approved.entry.id)

    const served = await until('the waiting process served', async () => {
      const line = waiter.output
        .stdout()
        .split('\n')
        .find((l) => l.includes('"svid"'))
      return line === undefined ? undefined : (JSON.parse(line) as { ids: string[]; atMs: number })
    })
    console.log(`approval → SVID at the waiting process: ${served.atMs - approvedAtMs} ms`)
    expect(served.ids).toEqual(['spiffe://tessera.local/agents/unknown-tool'])

    // Decided once: a second approval is refused and creates nothing.
    const entries = await entryCount(stack)
    const again = await stack.cli([
      'approval',
      'approve',
      '--id',
      request.id,
      '--spiffe-id',
      'spiffe://tessera.local/x',
    ])
    expect(errorCodeOf(again)).toBe('ERR_PENDING_DECIDED')
    expect(await entryCount(stack)).toBe(entries)
  })
})

describe('pending requests past their time and their number', () => {
  let stack: Stack
  afterAll(async () => {
    await stack?.stop()
  })

  it('refuses to approve an expired request; keeps at most the configured number, counting and auditing drops once', async () => {
    stack = await startStack({ serverArgs: ['--pending-ttl', '1s', '--max-pending-requests', '2'] })
    const stale = await unknownBinary(stack, 'stale-tool')
    await probeAs(stale, stack)
    const request = await until('the pending request', () => requestFor(stack, stale, true))
    await until('the request to expire', async () =>
      (await requestFor(stack, stale, true))?.state === 'expired' ? true : undefined,
    )
    const entries = await entryCount(stack)
    const late = await stack.cli([
      'approval',
      'approve',
      '--id',
      request.id,
      '--spiffe-id',
      'spiffe://tessera.local/a',
    ])
    expect(errorCodeOf(late)).toBe('ERR_PENDING_EXPIRED')
    expect(await entryCount(stack)).toBe(entries)
    expect(await requestFor(stack, stale)).toBeUndefined()

    for (const name of ['one', 'two', 'three', 'four']) {
      const exe = await unknownBinary(stack, name)
      await probeAs(exe, stack)
      await until(`the request of ${name}`, () => requestFor(stack, exe, true))
    }
    const all = await list(stack, true)
    expect(all.requests.length).toBe(2)
    expect(all.requests.map((r) => r.exe_path).sort()).toEqual([
      join(stack.dir, 'bin', 'four'),
      join(stack.dir, 'bin', 'three'),
    ])
    expect(all.dropped).toBe(3)
    const audit = await readFile(join(stack.dir, 'server', 'audit.log'), 'utf8')
    expect(audit.split('\n').filter((l) => l.includes('ERR_PENDING_LIMIT'))).toHaveLength(1)
  })
})

/** Runs the one-shot probe (an X509-SVID fetch) under `exe`, a copy of node. */
async function probeAs(exe: string, stack: Stack) {
  const { stdout, stderr } = await untilEnd(spawnPiped(exe, [PROBE_PATH, stack.socketPath, 'x509']))
  const line = stdout.trim().split('\n').pop()
  if (!line) throw new Error(`the probe printed nothing: ${stderr}`)
  return JSON.parse(line) as Awaited<ReturnType<typeof probe>>
}
