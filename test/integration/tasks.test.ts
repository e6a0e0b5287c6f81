import type { ChildProcess } from 'node:child_process'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { parseTaskTokenInsecure } from '../../lib/core/task/task-token.js'
import { validateTaskToken } from '../../lib/verify/task-token.js'
import { LinearBackoff } from '../../lib/workload/backoff.js'
import { RevocationSource } from '../../lib/workload/revocation-source.js'
import { TaskClient, type TaskInfo } from '../../lib/workload/task-client.js'
import { TaskSource } from '../../lib/workload/task-source.js'
import { codeOf } from '../helpers/error-code.js'
import { CLI_PATH, jsonOf } from '../helpers/processes.js'
import { type Stack, startStack } from '../helpers/stack.js'
import { fetchJwtBundlesAt, readAuditLines, startTaskChild, untilServed } from '../helpers/task-calls.js'

/**
 * Tasks end to end (DESIGN §11, docs/tasks.md): a real server mints task tokens through a real agent
 * for callers of its Workload API socket; lib validates them; sub-tasks only narrow; a task ends when
 * the process that began it exits; `tessera task begin -- CMD` ends it when CMD exits.
 */

const TD = 'tessera.local'
const ME = `spiffe://${TD}/me`
const uid = process.getuid?.() ?? 0
let stack: Stack
let client: TaskClient
let revocations: RevocationSource
const children: ChildProcess[] = []

beforeAll(async () => {
  // A burst of 40 BeginTask calls, then 10 a second: room for every test before the flood; the flood's 200 would take 16 s to be all granted.
  stack = await startStack({ trustDomain: TD, agentArgs: ['--begin-task-per-second', '10'] })
  await stack.registerEntry({ spiffeId: ME, selectors: [`unix:uid:${uid}`], jwtTtl: '5m' })
  client = TaskClient.connect({ endpoint: stack.socketPath })
  const newBackoff = () => new LinearBackoff({ initialDelayMs: 100, maxDelayMs: 300 })
  revocations = await RevocationSource.create({ endpoint: stack.socketPath, newBackoff })
  // The first BeginTask waits until the agent holds the entry.
  await untilServed(stack.socketPath, () => client.listTasks())
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

const jwtBundles = () => fetchJwtBundlesAt(stack.socketPath)

const serverAudit = () => readAuditLines(join(stack.dir, 'server', 'audit.log'))

/**
 * Validates `token` with the agent's revocation feed until it is refused (or a generous deadline
 * passes): the refusal's code, or undefined when it was still accepted. No time is asserted.
 */
async function untilRefused(token: string, audience = 'https://mcp.example'): Promise<string | undefined> {
  const bundles = await jwtBundles()
  const deadline = Date.now() + 15_000
  for (;;) {
    const code = await codeOf(validateTaskToken(token, bundles, { audience, revocations }))
    if (code !== undefined || Date.now() > deadline) return code
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** Polls ListTasks until `done` holds for the task (or a generous deadline passes). */
async function untilTask(taskId: string, done: (t: TaskInfo) => boolean): Promise<TaskInfo | undefined> {
  const deadline = Date.now() + 15_000
  for (;;) {
    const task = (await client.listTasks()).find((t) => t.taskId === taskId)
    if ((task !== undefined && done(task)) || Date.now() > deadline) return task
    await new Promise((r) => setTimeout(r, 50))
  }
}

const params = {
  audiences: ['https://mcp.example'],
  scopes: ['repo:read', 'repo:write'],
  purpose: 'fix issue 12',
}

describe('tasks through the agent', () => {
  it('begins a task whose token carries the Transaction Token claims, verified by lib, and ends it', async () => {
    const source = await TaskSource.begin({ ...params, ttlMs: 600_000, endpoint: stack.socketPath })
    const bundles = await jwtBundles()
    const task = await validateTaskToken(source.token, bundles, {
      audience: 'https://mcp.example',
      requiredScopes: ['repo:write'],
    })
    expect(task.taskId).toBe(source.taskId)
    expect(task.subject.toString()).toBe(ME)
    expect(task.scopes).toEqual(['repo:read', 'repo:write'])
    expect(task.purpose).toBe('fix issue 12')
    expect(task.requestingWorkload).toMatch(new RegExp(`^spiffe://${TD}/`))
    expect(task.requester.pid).toBe(process.pid)
    expect(task.requester.exeSha256).toMatch(/^[0-9a-f]{64}$/)
    // The entry's JWT TTL (5m) caps the 10 minutes asked for.
    expect(task.expiresAtMs - task.issuedAtMs).toBe(300_000)
    expect(
      await codeOf(
        validateTaskToken(source.token, bundles, {
          audience: 'https://mcp.example',
          requiredScopes: ['repo:admin'],
        }),
      ),
    ).toBe('ERR_TASK_SCOPE_MISSING')
    expect((await client.listTasks()).find((t) => t.taskId === source.taskId)).toMatchObject({
      pid: process.pid,
    })
    await validateTaskToken(source.token, bundles, { audience: 'https://mcp.example', revocations })
    await source.close()
    expect(await untilTask(source.taskId, (t) => t.endReason !== undefined)).toMatchObject({
      endReason: 'ended',
    })
    // Every verifier that watches the agent's revocation feed refuses the token from then on.
    expect(await untilRefused(source.token)).toBe('ERR_CREDENTIAL_REVOKED')
    const ended = (await serverAudit()).find(
      (r) => r['action'] === 'EndTask' && r['correlationId'] === source.taskId,
    )
    expect(ended).toMatchObject({ event: 'call.allowed', resource: ME })
    // An ended task is not renewed.
    expect(await codeOf(client.beginTask(params, source.taskId))).toBe('ERR_TASK_ENDED')
  })

  it('one pidfd per process, however many tasks it begins', async () => {
    const agentPid = stack.agent().child.pid
    const fds = async () => (await readdir(`/proc/${agentPid}/fd`)).length
    const first = await client.beginTask(params)
    const before = await fds()
    const more = []
    for (let i = 0; i < 8; i++) more.push(await client.beginTask(params))
    expect((await fds()) - before).toBeLessThan(4)
    for (const t of [first, ...more]) await client.endTask(t.taskId)
  })

  it('a sub-task may only narrow its parent; wider, over the cap and malformed requests are refused with codes and audited', async () => {
    const parent = await client.beginTask({ ...params, ttlMs: 120_000 })
    const child = await client.beginTask({ ...params, scopes: ['repo:read'], parentToken: parent.token })
    const bundles = await jwtBundles()
    const sub = await validateTaskToken(child.token, bundles, { audience: 'https://mcp.example' })
    expect(sub.parentTaskId).toBe(parent.taskId)
    expect(sub.scopes).toEqual(['repo:read'])
    expect(sub.expiresAtMs).toBeLessThanOrEqual(parent.expiresAtMs)
    const wider = { ...params, scopes: ['repo:read', 'repo:admin'], parentToken: parent.token }
    expect(await codeOf(client.beginTask(wider))).toBe('ERR_TASK_SCOPE_WIDENED')
    const otherAudience = { ...params, audiences: ['https://elsewhere'], parentToken: parent.token }
    expect(await codeOf(client.beginTask(otherAudience))).toBe('ERR_TASK_SCOPE_WIDENED')
    expect(await codeOf(client.beginTask({ ...params, ttlMs: 16 * 60_000 }))).toBe('ERR_TTL_INVALID')
    expect(await codeOf(client.beginTask({ ...params, scopes: [] }))).toBe('ERR_REQUEST_INVALID')
    expect(await codeOf(client.beginTask({ ...params, purpose: 'p'.repeat(300) }))).toBe(
      'ERR_REQUEST_TOO_LARGE',
    )
    expect(await codeOf(client.beginTask({ ...params, parentToken: 'not.a.token' }))).toBe(
      'ERR_TASK_TOKEN_INVALID',
    )
    const denied = (await serverAudit()).filter((r) => r['event'] === 'svid.denied' && r['kind'] === 'task')
    expect(denied.find((r) => r['code'] === 'ERR_TASK_SCOPE_WIDENED')).toMatchObject({
      outcome: 'denied',
      correlationId: parent.taskId,
      delegatedSubject: `${ME} (task ${parent.taskId})`,
    })
    const issued = (await serverAudit()).find(
      (r) => r['event'] === 'svid.issued' && r['correlationId'] === child.taskId,
    )
    expect(issued).toMatchObject({ kind: 'task', delegatedSubject: `${ME} (task ${parent.taskId})` })
    await client.endTask(parent.taskId)
    // Ending the parent ends its sub-tasks: both tokens are refused.
    expect(await untilRefused(parent.token)).toBe('ERR_CREDENTIAL_REVOKED')
    expect(await untilRefused(child.token)).toBe('ERR_CREDENTIAL_REVOKED')
    // A sub-task of an ended task is refused.
    expect(await codeOf(client.beginTask({ ...params, parentToken: parent.token }))).toBe('ERR_TASK_ENDED')
  })

  it('the task ends when the process that began it is killed', async () => {
    const { child, taskId, token } = await startTaskChild(stack.socketPath, params, { closeClient: false })
    children.push(child)
    expect(await untilTask(taskId, () => true)).toMatchObject({ pid: child.pid })
    expect((await client.listTasks()).find((t) => t.taskId === taskId)?.endedAtMs).toBeUndefined()
    await validateTaskToken(token, await jwtBundles(), { audience: 'https://mcp.example', revocations })
    child.kill('SIGKILL')
    expect(await untilTask(taskId, (t) => t.endReason !== undefined)).toMatchObject({ endReason: 'exited' })
    expect(await untilRefused(token)).toBe('ERR_CREDENTIAL_REVOKED')
    const ended = (await serverAudit()).find(
      (r) => r['action'] === 'EndTask' && r['correlationId'] === taskId,
    )
    expect(ended).toMatchObject({ event: 'call.allowed' })
  })

  it('tessera task begin -- CMD runs CMD with the task, ends it when CMD exits and passes its exit code on', async () => {
    const show =
      'process.stdout.write(process.env.TESSERA_TASK_ID + " " + process.env.TESSERA_TASK_TOKEN.split(".").length); process.exit(3)'
    const args = ['task', 'begin', ...['--scope', 'repo:read', '--audience', 'mcp', '--purpose', 'run it']]
    const ran = await stack.cli([...args, '--', process.execPath, '-e', show])
    expect(ran.code, ran.stderr).toBe(3)
    const [taskId, parts] = ran.stdout.trim().split(' ')
    expect(parts).toBe('3')
    expect(await untilTask(taskId ?? '', (t) => t.endReason !== undefined)).toMatchObject({
      endReason: 'ended',
    })
    // Printed: the task outlives the command until `task end`.
    const printed = jsonOf<{ task_id: string; token: string; expires_at: number }>(
      await stack.cli([...args, '--ttl', '2m', '--output', 'json']),
    )
    expect(printed.token.split('.')).toHaveLength(3)
    const listed = jsonOf<{ tasks: Array<{ task_id: string; pid: number; ended_at?: number }> }>(
      await stack.cli(['task', 'list', '--output', 'json']),
    )
    expect(listed.tasks.find((t) => t.task_id === printed.task_id)).toMatchObject({ pid: 0 })
    expect(
      await codeOf(validateTaskToken(printed.token, await jwtBundles(), { audience: 'mcp', revocations })),
    ).toBe(undefined)
    expect((await stack.cli(['task', 'end', printed.task_id])).code).toBe(0)
    expect(await untilRefused(printed.token, 'mcp')).toBe('ERR_CREDENTIAL_REVOKED')
    expect(await untilTask(printed.task_id, (t) => t.endReason !== undefined)).toMatchObject({
      endReason: 'ended',
    })
    const again = await stack.cli(['task', 'end', 'no-such-task'])
    expect(again.stderr).toMatch(/^error ERR_TASK_NOT_FOUND/)
  })

  it('tessera task begin inside a task begins a sub-task of it, and may not widen it', async () => {
    const inner = (scope: string) =>
      `const r = require('node:child_process').spawnSync(process.execPath, [${JSON.stringify(CLI_PATH)}, 'task', 'begin', '--scope', '${scope}', '--audience', 'mcp', '--purpose', 'inner', '--output', 'json'], { encoding: 'utf8' }); process.stdout.write(r.stdout || r.stderr); process.exit(r.status)`
    const outer = [
      'task',
      'begin',
      '--scope',
      'repo:read',
      '--scope',
      'repo:write',
      '--audience',
      'mcp',
      '--purpose',
      'outer',
    ]
    const narrowed = await stack.cli([...outer, '--', process.execPath, '-e', inner('repo:read')])
    expect(narrowed.code, narrowed.stdout + narrowed.stderr).toBe(0)
    const sub = JSON.parse(narrowed.stdout) as { token: string }
    expect(parseTaskTokenInsecure(sub.token)).toMatchObject({ scopes: ['repo:read'], purpose: 'inner' })
    expect(parseTaskTokenInsecure(sub.token).parentTaskId).toMatch(/./)
    const widened = await stack.cli([...outer, '--', process.execPath, '-e', inner('repo:admin')])
    expect(widened.code).toBe(1)
    expect(widened.stdout).toMatch(/^error ERR_TASK_SCOPE_WIDENED/)
  })

  it('TaskSource renews the token before it expires, keeping the task id, and ends the task on close', async () => {
    const source = await TaskSource.begin({ ...params, ttlMs: 3000, endpoint: stack.socketPath })
    const first = { token: source.token, expiresAtMs: source.expiresAtMs }
    const deadline = Date.now() + 15_000
    while (source.token === first.token && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    expect(source.token).not.toBe(first.token)
    expect(source.expiresAtMs).toBeGreaterThan(first.expiresAtMs)
    const renewed = await validateTaskToken(source.token, await jwtBundles(), {
      audience: 'https://mcp.example',
    })
    expect(renewed.taskId).toBe(source.taskId)
    expect(renewed.jti).not.toBe(parseTaskTokenInsecure(first.token).jti)
    await source.close()
    expect(await untilTask(source.taskId, (t) => t.endReason !== undefined)).toMatchObject({
      endReason: 'ended',
    })
  })

  it('a flood of BeginTask from one caller is throttled, and nothing is issued past the limit', async () => {
    const before = (await serverAudit()).filter(
      (r) => r['event'] === 'svid.issued' && r['kind'] === 'task',
    ).length
    const codes = await Promise.all(
      Array.from({ length: 200 }, () => codeOf(client.beginTask({ ...params, ttlMs: 60_000 }))),
    )
    const throttled = codes.filter((c) => c === 'ERR_THROTTLED').length
    const granted = codes.filter((c) => c === undefined).length
    expect(throttled).toBeGreaterThan(0)
    expect(granted + throttled).toBe(200)
    const after = (await serverAudit()).filter(
      (r) => r['event'] === 'svid.issued' && r['kind'] === 'task',
    ).length
    expect(after - before).toBe(granted)
  })
})
