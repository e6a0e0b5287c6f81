import { execFileSync } from 'node:child_process'
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { CreateJoinTokenResponse__Output } from '../../common/gen/tessera/admin/v1/CreateJoinTokenResponse.js'
import type { ListAgentsResponse__Output } from '../../common/gen/tessera/admin/v1/ListAgentsResponse.js'
import type { ListEntriesResponse__Output } from '../../common/gen/tessera/admin/v1/ListEntriesResponse.js'
import type { Entry__Output } from '../../common/gen/tessera/types/v1/Entry.js'
import { fingerprintToken } from '../../common/log/audit-log.js'
import { type AdminClients, callRaw, connectAdmin, failureOf } from '../helpers/admin-grpc.js'
import {
  dumpOutput,
  isRoot,
  killAllChildren,
  makeTempDir,
  removeDir,
  requireBuild,
  runCli,
  type ServerProcess,
  startServerProcess,
  waitFor,
} from '../helpers/processes.js'
import { probe, type Stack, startStack } from '../helpers/stack.js'

const TD = 'tessera.local'
/** Creates tried once the disk is full: their audit lines span several pages, so one must cross a page. */
const ATTEMPTS = 30
/** What a create may fail with on a full disk: never ERR_INTERNAL, never a committed change. */
const DISK_FULL_CODES = ['ERR_AUDIT_UNAVAILABLE', 'ERR_DATASTORE_IO']

/** Mounts a tmpfs of `size` at `dir`; false when that is not possible here. */
function mountTmpfs(dir: string, size: string): boolean {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { stdio: 'pipe' })
    return true
  } catch {
    return false
  }
}

/** Fills the file system of `dir` to the last byte with a `filler` file. */
function fill(dir: string): string {
  const path = join(dir, 'filler')
  const fd = openSync(path, 'w')
  try {
    for (const chunk of [64 * 1024, 4096, 1]) {
      const bytes = Buffer.alloc(chunk, 0x5a)
      for (;;) {
        try {
          if (writeSync(fd, bytes) < chunk) break
        } catch {
          break
        }
      }
    }
  } finally {
    closeSync(fd)
  }
  return path
}

interface Attempt {
  readonly spiffeId: string
  readonly id?: string
  /** The Tessera code it failed with; undefined when it succeeded. */
  readonly errorCode?: string
}

/** Where an entry goes: under which parent, for which uid. */
interface Placement {
  readonly parentId: string
  readonly uid: number
}

async function create(admin: AdminClients, spiffeId: string, at: Placement): Promise<Attempt> {
  const entry = {
    spiffe_id: spiffeId,
    parent_id: at.parentId,
    selectors: [{ type: 'unix', value: `uid:${at.uid}` }],
  }
  const call = callRaw<Entry__Output>((o, r) => admin.entries.CreateEntry({ entry }, o, r))
  try {
    return { spiffeId, id: (await call).id }
  } catch (err) {
    const failure = await failureOf(Promise.reject(err))
    return { spiffeId, errorCode: failure.errorCode ?? `grpc status ${failure.code}` }
  }
}

async function listAll(admin: AdminClients): Promise<Entry__Output[]> {
  const page = await callRaw<ListEntriesResponse__Output>((o, r) =>
    admin.entries.ListEntries({ page_size: 1000 }, o, r),
  )
  return page.entries
}

/**
 * Checks DESIGN §7 and §9 over the attempts: every create reported OK is stored and audited; every
 * one that failed says why with a disk-full code and left no entry and no `allowed` audit line; the
 * audit file is whole lines only.
 */
async function expectAllOrNothing(admin: AdminClients, auditPath: string, attempts: Attempt[]) {
  const text = readFileSync(auditPath, 'utf8')
  expect(text.endsWith('\n'), `the audit file ends mid-line: …${JSON.stringify(text.slice(-80))}`).toBe(true)
  const records = text
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as { event: string; outcome: string; resource: string; entryId?: string })
  const allowed = records.filter((r) => r.event === 'entry.changed' && r.outcome === 'allowed')
  const stored = await listAll(admin)
  for (const a of attempts) {
    const inStore = stored.filter((e) => e.spiffe_id === a.spiffeId)
    const audited = allowed.filter((r) => r.resource === a.spiffeId)
    if (a.errorCode === undefined) {
      expect(
        inStore.map((e) => e.id),
        a.spiffeId,
      ).toEqual([a.id])
      expect(
        audited.map((r) => r.entryId),
        a.spiffeId,
      ).toEqual([a.id])
    } else {
      expect(DISK_FULL_CODES, `${a.spiffeId} failed with ${a.errorCode}`).toContain(a.errorCode)
      expect(inStore, `${a.spiffeId} failed but was committed`).toEqual([])
      expect(audited, `${a.spiffeId} failed but was audited as allowed`).toEqual([])
    }
  }
}

/** A join token asked for on a full disk: the token, or the code it failed with. */
interface TokenAttempt {
  readonly token?: string
  readonly errorCode?: string
}

async function createToken(admin: AdminClients): Promise<TokenAttempt> {
  try {
    const res = await callRaw<CreateJoinTokenResponse__Output>((o, r) =>
      admin.joinTokens.CreateJoinToken({}, o, r),
    )
    return { token: res.token }
  } catch (err) {
    const failure = await failureOf(Promise.reject(err))
    return { errorCode: failure.errorCode ?? `grpc status ${failure.code}` }
  }
}

/** Join tokens: each one stored was audited, none failed was stored, never ERR_INTERNAL. */
function expectTokensAllOrNothing(dbPath: string, auditPath: string, attempts: TokenAttempt[]) {
  const audited = new Set(
    readFileSync(auditPath, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; resource: string })
      .filter((r) => r.event === 'token.created')
      .map((r) => r.resource),
  )
  const db = new Database(dbPath, { readonly: true })
  const stored = db.prepare('SELECT count(*) FROM join_tokens').pluck().get()
  db.close()
  const ok = attempts.filter((a) => a.token !== undefined)
  expect(stored, 'tokens stored').toBe(ok.length)
  for (const a of ok) expect(audited.has(fingerprintToken(a.token ?? ''))).toBe(true)
  for (const a of attempts) if (a.errorCode !== undefined) expect(DISK_FULL_CODES).toContain(a.errorCode)
}

/** Every kind of failure the creates met is in the server's log at error, with its code. */
function expectFailuresLogged(server: ServerProcess, attempts: Attempt[]) {
  const logged = server
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level?: string; code?: string })
    .filter((r) => r.level === 'error')
  for (const code of new Set(attempts.flatMap((a) => a.errorCode ?? [])))
    expect(logged, `no error logged for ${code}`).toContainEqual(expect.objectContaining({ code }))
}

describe.skipIf(!isRoot)('disk full (tmpfs mounts; needs root)', () => {
  let root: string
  const mounts: string[] = []
  let server: ServerProcess | undefined
  let admin: AdminClients | undefined
  const stacks: Stack[] = []

  beforeEach(async (ctx) => {
    requireBuild()
    root = await makeTempDir('tessera-full-')
    ctx.onTestFailed(() => dumpOutput([server]))
  })
  afterEach(async () => {
    admin?.close()
    await server?.stop()
    for (const stack of stacks.splice(0)) await stack.stop()
    await killAllChildren()
    for (const m of mounts.splice(0)) execFileSync('umount', ['-l', m], { stdio: 'pipe' })
    await removeDir(root)
  })

  async function run(dataDir: string, disk: string, auditPath: string, extra: string[] = []) {
    server = await startServerProcess({ dataDir, args: extra })
    admin = connectAdmin(server.socket)
    const at = (uid: number) => ({ parentId: `spiffe://${TD}/agent`, uid })
    const first = await create(admin, `spiffe://${TD}/before`, at(0))
    expect(first.errorCode).toBeUndefined()
    const filler = fill(disk)
    const attempts: Attempt[] = []
    for (let i = 1; i <= ATTEMPTS; i++) attempts.push(await create(admin, `spiffe://${TD}/full/${i}`, at(i)))
    expect(
      attempts.filter((a) => a.errorCode !== undefined).length,
      'no create failed: the disk was not full',
    ).toBeGreaterThan(0)
    await expectAllOrNothing(admin, auditPath, attempts)
    expectFailuresLogged(server, attempts)
    const tokens: TokenAttempt[] = []
    for (let i = 0; i < 10; i++) tokens.push(await createToken(admin))
    expectTokensAllOrNothing(join(dataDir, 'datastore.sqlite3'), auditPath, tokens)
    // Room again: the server never stopped, and writes work and are audited again.
    rmSync(filler)
    const after = await create(admin, `spiffe://${TD}/after`, at(ATTEMPTS + 1))
    expect(after.errorCode).toBeUndefined()
    await expectAllOrNothing(admin, auditPath, [first, ...attempts, after])
    tokens.push(await createToken(admin))
    expect(tokens.at(-1)?.errorCode).toBeUndefined()
    expectTokensAllOrNothing(join(dataDir, 'datastore.sqlite3'), auditPath, tokens)
  }

  it('with the audit log on a full disk: a create commits and is audited, or fails and leaves nothing', async (ctx) => {
    const disk = join(root, 'audit-disk')
    if (!mountTmpfs(disk, '256k')) return ctx.skip('cannot mount a tmpfs here')
    mounts.push(disk)
    const auditPath = join(disk, 'audit.log')
    await run(join(root, 'server'), disk, auditPath, ['--audit-log-path', auditPath])
  })

  it('with the datastore and the audit log on one full disk: all or nothing, never ERR_INTERNAL', async (ctx) => {
    const disk = join(root, 'server')
    if (!mountTmpfs(disk, '4m')) return ctx.skip('cannot mount a tmpfs here')
    mounts.push(disk)
    await run(disk, disk, join(disk, 'audit.log'))
  })

  it('with an agent connected: it gets exactly the creates reported OK; a new agent attests fully or not at all', async (ctx) => {
    const disk = join(root, 'audit-disk')
    if (!mountTmpfs(disk, '256k')) return ctx.skip('cannot mount a tmpfs here')
    mounts.push(disk)
    const auditPath = join(disk, 'audit.log')
    const stack = await startStack({ serverArgs: ['--audit-log-path', auditPath] })
    stacks.push(stack)
    ctx.onTestFailed(() => console.error(stack.output()))
    admin = connectAdmin(stack.adminSocket)
    const at = { parentId: stack.agentAlias, uid: process.getuid?.() ?? 0 }
    const first = await create(admin, `spiffe://${TD}/before`, at)
    await waitForIds(stack, [first.spiffeId])
    const spare = await createToken(admin)
    const filler = fill(disk)
    const attempts: Attempt[] = []
    for (let i = 1; i <= ATTEMPTS; i++) attempts.push(await create(admin, `spiffe://${TD}/full/${i}`, at))
    expect(
      attempts.some((a) => a.errorCode !== undefined),
      'no create failed: the disk was not full',
    ).toBe(true)
    await expectAllOrNothing(admin, auditPath, attempts)
    // A second agent attesting now is refused, and leaves no agent record behind.
    const second = await runCli(secondAgentArgs(stack, root, spare.token ?? ''), { timeoutMs: 30_000 })
    expect(second.code, second.stderr).not.toBe(0)
    expect(second.stderr).toMatch(/ERR_AUDIT_UNAVAILABLE|ERR_DATASTORE_IO/)
    const agents = await callRaw<ListAgentsResponse__Output>((o, r) => admin?.agents.ListAgents({}, o, r))
    expect(agents.agents).toHaveLength(1)
    // With room again the agent can have SVIDs signed (each is audited): it serves exactly the
    // entries that were reported created, pushed to it by the server.
    rmSync(filler)
    const ok = [first, ...attempts].filter((a) => a.errorCode === undefined).map((a) => a.spiffeId)
    await waitForIds(stack, ok)
  })
})

/** `tessera agent run` for a second agent of the stack's server, in its own directory. */
function secondAgentArgs(stack: Stack, root: string, token: string): string[] {
  const port = /"agentApi":"[^"]*:(\d+)"/.exec(stack.server().output())?.[1] ?? '0'
  return [
    'agent',
    'run',
    '--data-dir',
    join(root, 'agent2'),
    '--server-address',
    `127.0.0.1:${port}`,
    '--trust-bundle',
    join(stack.dir, 'bundle.pem'),
    '--trust-domain',
    TD,
    '--join-token',
    token,
  ]
}

/** Waits until a workload of this uid gets exactly `expected` SPIFFE IDs from the agent. */
async function waitForIds(stack: Stack, expected: string[]): Promise<void> {
  const want = [...expected].sort()
  let last: string[] = []
  try {
    await waitFor(
      async () => {
        const got = await probe(stack.socketPath, ['x509'])
        last = [...(got.ids ?? [])].sort()
        return JSON.stringify(last) === JSON.stringify(want)
      },
      { timeoutMs: 30_000 },
    )
  } catch {
    expect(last).toEqual(want)
  }
}
