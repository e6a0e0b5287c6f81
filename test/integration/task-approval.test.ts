import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { parseTaskTokenInsecure } from '../../lib/core/task/task-token.js'
import { validateTaskToken } from '../../lib/verify/task-token.js'
import { LinearBackoff } from '../../lib/workload/backoff.js'
import { RevocationSource } from '../../lib/workload/revocation-source.js'
import { type BeginTaskParams, TaskClient } from '../../lib/workload/task-client.js'
import { spawnPiped, untilEnd } from '../helpers/child-process.js'
import { codeOf } from '../helpers/error-code.js'
import { CLI_PATH, jsonOf } from '../helpers/processes.js'
import { type Stack, startStack } from '../helpers/stack.js'
import { fetchJwtBundlesAt, readAuditLines, untilServed } from '../helpers/task-calls.js'

/**
 * Scopes that need a human (DESIGN §11, docs/tasks.md): with `server run --human-scope`, a BeginTask
 * holding such a scope waits for `tessera approval approve|deny` (issue 7's flow) and fails cleanly
 * on denial or timeout; other scopes begin at once. Real server and agent processes throughout.
 */

const TD = 'tessera.local'
const ME = `spiffe://${TD}/me`
const uid = process.getuid?.() ?? 0
const BRIDGE_PATH = fileURLToPath(new URL('../helpers/pty-bridge.py', import.meta.url))
let stack: Stack
let client: TaskClient
let revocations: RevocationSource
const children: ChildProcess[] = []

beforeAll(async () => {
  stack = await startStack({
    trustDomain: TD,
    serverArgs: [
      '--human-scope',
      'repo:write',
      '--human-scope',
      'deploy:*',
      '--human-approval-timeout',
      '2m',
    ],
  })
  await stack.registerEntry({ spiffeId: ME, selectors: [`unix:uid:${uid}`], jwtTtl: '5m' })
  client = TaskClient.connect({ endpoint: stack.socketPath, timeoutMs: 60_000 })
  await untilServed(stack.socketPath)
  const newBackoff = () => new LinearBackoff({ initialDelayMs: 100, maxDelayMs: 300 })
  revocations = await RevocationSource.create({ endpoint: stack.socketPath, newBackoff })
})
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL')
  client?.close()
  revocations?.close()
  await stack?.stop()
})
afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') console.error(stack?.output())
})

interface RequestJson {
  id: string
  kind: string
  state: string
  task_id: string
  spiffe_id: string
  scopes: string[]
  human_scopes: string[]
  audiences: string[]
  purpose: string
  uid: number
  pid: number
  count: number
}

async function requests(all = false): Promise<RequestJson[]> {
  const args = ['approval', 'list', '--output', 'json', ...(all ? ['--all'] : [])]
  return jsonOf<{ requests: RequestJson[] }>(await stack.cli(args)).requests
}

/**
 * Begins a task; `awaiting` resolves with the pending request's id once the call waits for a human,
 * and rejects at once if the call ends without waiting.
 */
function beginWaiting(params: BeginTaskParams, c = client) {
  let said: (id: string) => void = () => undefined
  const asked = new Promise<string>((resolve) => {
    said = resolve
  })
  const begun = c.beginTask({ ...params, onAwaitingApproval: (id) => said(id) })
  begun.catch(() => undefined)
  const ended = begun.then(
    () => Promise.reject(new Error('the task began without waiting for a human')),
    (err: unknown) => Promise.reject(err),
  )
  const awaiting = Promise.race([asked, ended])
  return { awaiting, begun }
}

const jwtBundles = () => fetchJwtBundlesAt(stack.socketPath)

/** Validates `token` with the agent's revocation feed until it is refused (or a generous deadline passes). */
async function untilRefused(token: string, bundles: Awaited<ReturnType<typeof jwtBundles>>) {
  const deadline = Date.now() + 15_000
  for (;;) {
    const code = await codeOf(
      validateTaskToken(token, bundles, { audience: 'https://mcp.example', revocations }),
    )
    if (code !== undefined || Date.now() > deadline) return code
    await new Promise((r) => setTimeout(r, 50))
  }
}

const serverAudit = () => readAuditLines(join(stack.dir, 'server', 'audit.log'))

const base = { audiences: ['https://mcp.example'], purpose: 'fix issue 12' }

describe('scopes that need a human', () => {
  it('a scope not marked begins at once, with consent by entry', async () => {
    const task = await client.beginTask({ ...base, scopes: ['repo:read'] })
    expect(parseTaskTokenInsecure(task.token).consent).toBe('entry')
    await client.endTask(task.taskId)
  })

  it('waits for tessera approval approve, which shows the task; then the token arrives with consent human', async () => {
    const { awaiting, begun } = beginWaiting({ ...base, scopes: ['repo:read', 'repo:write'] })
    const requestId = await awaiting
    const listed = (await requests()).find((r) => r.id === requestId)
    expect(listed).toMatchObject({
      kind: 'task',
      state: 'pending',
      spiffe_id: ME,
      scopes: ['repo:read', 'repo:write'],
      human_scopes: ['repo:write'],
      audiences: ['https://mcp.example'],
      purpose: 'fix issue 12',
      uid,
      pid: process.pid,
    })
    const shown = await stack.cli(['approval', 'show', '--id', requestId])
    expect(shown.stdout).toContain('repo:write (needs a human)')
    expect(shown.stdout).toContain('fix issue 12')
    const approved = await stack.cli(['approval', 'approve', '--id', requestId])
    expect(approved.code, approved.stderr).toBe(0)
    const task = await begun
    const token = parseTaskTokenInsecure(task.token)
    expect(token.consent).toBe('human')
    expect(token.approvedBy).toBe(`admin:uid:${uid}`)
    expect(token.taskId).toBe(listed?.task_id)
    expect(token.scopes).toEqual(['repo:read', 'repo:write'])
    const audit = await serverAudit()
    const of = (event: string) => audit.find((l) => l['event'] === event && l['requestId'] === requestId)
    expect(of('approval.requested')?.['correlationId']).toBe(task.taskId)
    expect(of('approval.approved')?.['correlationId']).toBe(task.taskId)
    // Approved once: approving again is refused, and a renewal does not ask again.
    expect((await stack.cli(['approval', 'approve', '--id', requestId])).code).not.toBe(0)
    const renewed = await client.beginTask({ ...base, scopes: [] }, task.taskId)
    expect(parseTaskTokenInsecure(renewed.token).consent).toBe('human')
    await client.endTask(task.taskId)
  })

  it('tessera approval deny on an approved task request withdraws the consent: the task and its sub-task are revoked, audited', async () => {
    const params = { ...base, scopes: ['repo:read', 'deploy:dev'] }
    const { awaiting, begun } = beginWaiting(params)
    const requestId = await awaiting
    expect((await stack.cli(['approval', 'approve', '--id', requestId])).code).toBe(0)
    const task = await begun
    const sub = await client.beginTask({ ...base, scopes: ['repo:read'], parentToken: task.token })
    const bundles = await jwtBundles()
    const audience = 'https://mcp.example'
    expect(await codeOf(validateTaskToken(task.token, bundles, { audience, revocations }))).toBeUndefined()
    const withdrawn = await stack.cli(['approval', 'deny', '--id', requestId])
    expect(withdrawn.code, withdrawn.stderr).toBe(0)
    expect(await untilRefused(task.token, bundles)).toBe('ERR_CREDENTIAL_REVOKED')
    expect(await untilRefused(sub.token, bundles)).toBe('ERR_CREDENTIAL_REVOKED')
    expect(await codeOf(client.beginTask(params, task.taskId))).toBe('ERR_TASK_ENDED')
    expect((await requests(true)).find((r) => r.id === requestId)?.state).toBe('denied')
    const audit = await serverAudit()
    const line = audit.find((l) => l['event'] === 'approval.denied' && l['requestId'] === requestId)
    expect(line).toMatchObject({ correlationId: task.taskId, withdrawnTaskId: task.taskId })
    // The withdrawal is remembered like a denial: the same ask is refused without a new prompt.
    expect(await codeOf(client.beginTask(params))).toBe('ERR_TASK_DENIED')
  })

  it('tessera approval deny refuses the task (ERR_TASK_DENIED) and the same ask is refused without a new prompt', async () => {
    const params = { ...base, scopes: ['deploy:prod'] }
    const { awaiting, begun } = beginWaiting(params)
    const requestId = await awaiting
    const denied = await stack.cli(['approval', 'deny', '--id', requestId])
    expect(denied.code, denied.stderr).toBe(0)
    expect(await codeOf(begun)).toBe('ERR_TASK_DENIED')
    let prompted = false
    const again = client.beginTask({ ...params, onAwaitingApproval: () => (prompted = true) })
    expect(await codeOf(again)).toBe('ERR_TASK_DENIED')
    expect(prompted).toBe(false)
    const kept = (await requests(true)).find((r) => r.id === requestId)
    expect(kept).toMatchObject({ kind: 'task', state: 'denied', count: 2 })
    const audit = await serverAudit()
    const deniedLine = audit.find((l) => l['event'] === 'approval.denied' && l['requestId'] === requestId)
    expect(deniedLine?.['correlationId']).toBe(kept?.task_id)
  })

  it("ends with ERR_APPROVAL_TIMEOUT before the caller's deadline; the expired request cannot be approved", async () => {
    const short = TaskClient.connect({ endpoint: stack.socketPath, timeoutMs: 3000 })
    try {
      const { awaiting, begun } = beginWaiting({ ...base, scopes: ['deploy:staging'] }, short)
      const requestId = await awaiting
      expect(await codeOf(begun)).toBe('ERR_APPROVAL_TIMEOUT')
      const late = await stack.cli(['approval', 'approve', '--id', requestId])
      expect(late.code).not.toBe(0)
      expect(late.stderr).toContain('ERR_PENDING_EXPIRED')
      expect((await requests(true)).find((r) => r.id === requestId)?.state).toBe('expired')
    } finally {
      short.close()
    }
  })

  it('tessera task begin says on stderr that it waits, and runs the command once approved', async () => {
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      SPIFFE_ENDPOINT_SOCKET: `unix://${stack.socketPath}`,
    }
    const argv = [CLI_PATH, 'task', 'begin', '--scope', 'repo:write', '--audience', 'https://mcp.example']
    const cmd = ['--purpose', 'from the shell', '--', 'sh', '-c', 'test -n "$TESSERA_TASK_TOKEN"']
    const begin = spawnPiped(process.execPath, [...argv, ...cmd], { cwd: '/', env })
    children.push(begin.child)
    const ended = untilEnd(begin, 60_000, 'tessera task begin')
    const deadline = Date.now() + 20_000
    while (!begin.output.stderr().includes('Waiting for a human')) {
      if (Date.now() > deadline) throw new Error(`no waiting message:\n${begin.output.stderr()}`)
      await new Promise((r) => setTimeout(r, 50))
    }
    const requestId = /--id (\S+)/.exec(begin.output.stderr())?.[1] ?? ''
    expect((await stack.cli(['approval', 'approve', '--id', requestId])).code).toBe(0)
    const result = await ended
    expect(result.code, result.stderr).toBe(0)
  })

  it('tessera approval watch shows a task request and y approves it', async () => {
    const envWatch = { PATH: process.env.PATH ?? '/usr/bin:/bin', TESSERA_ADMIN_SOCKET: stack.adminSocket }
    const watch = spawn('python3', [BRIDGE_PATH, process.execPath, CLI_PATH, 'approval', 'watch'], {
      cwd: '/',
      env: envWatch,
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    children.push(watch)
    let screen = ''
    const onData = (d: Buffer) => {
      screen += d.toString()
    }
    watch.stdout.on('data', onData)
    watch.stderr.on('data', onData)
    const until = async (text: string) => {
      const deadline = Date.now() + 20_000
      while (!screen.includes(text)) {
        if (Date.now() > deadline) throw new Error(`the prompt never showed ${text}:\n${screen}`)
        await new Promise((r) => setTimeout(r, 50))
      }
    }
    try {
      const { awaiting, begun } = beginWaiting({ ...base, purpose: 'watched', scopes: ['deploy:prod', 'x'] })
      const requestId = await awaiting
      await until(requestId)
      await until('Approve? [y]es / [n]o: ')
      expect(screen).toContain('begin a task with scopes that need a human')
      expect(screen).toContain('deploy:prod (needs a human)')
      expect(screen).toContain('watched')
      watch.stdin.write('y\n')
      const task = await begun
      expect(parseTaskTokenInsecure(task.token).consent).toBe('human')
      await until(`Approved task request ${requestId}`)
      await client.endTask(task.taskId)
    } finally {
      watch.stdin.end()
      watch.kill('SIGTERM')
    }
  })
})
