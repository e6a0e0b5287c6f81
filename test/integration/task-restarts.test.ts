import type { ChildProcess } from 'node:child_process'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { validateTaskToken } from '../../lib/verify/task-token.js'
import { LinearBackoff } from '../../lib/workload/backoff.js'
import { RevocationSource } from '../../lib/workload/revocation-source.js'
import { TaskClient } from '../../lib/workload/task-client.js'
import { codeOf } from '../helpers/error-code.js'
import { type Stack, startStack } from '../helpers/stack.js'
import { fetchJwtBundlesAt, readAuditLines, startTaskChild, untilServed } from '../helpers/task-calls.js'

/**
 * Tasks across restarts and the server's known audiences (issue 8): a server restarted keeps its
 * tasks (renewal and EndTask work, an ended task stays ended); an agent restarted keeps watching the
 * processes that began tasks, and ends the tasks of those that died while it was down; a BeginTask
 * naming an audience no `--task-audience` allows is refused with ERR_TASK_AUDIENCE_UNKNOWN.
 */

const TD = 'tessera.local'
const ME = `spiffe://${TD}/me`
const AUD = 'https://mcp.example.com'
const uid = process.getuid?.() ?? 0
let stack: Stack
const children: ChildProcess[] = []
const params = { audiences: [AUD], scopes: ['repo:read'], purpose: 'survive restarts' }

beforeAll(async () => {
  stack = await startStack({ trustDomain: TD, serverArgs: ['--task-audience', 'https://*.example.com'] })
  await stack.registerEntry({ spiffeId: ME, selectors: [`unix:uid:${uid}`], jwtTtl: '5m' })
  await untilServed(stack.socketPath)
})
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL')
  await stack?.stop()
})
afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') console.error(stack?.output())
})

async function withClient<T>(fn: (c: TaskClient) => Promise<T>): Promise<T> {
  const c = TaskClient.connect({ endpoint: stack.socketPath })
  try {
    return await fn(c)
  } finally {
    c.close()
  }
}

const jwtBundles = () => fetchJwtBundlesAt(stack.socketPath)

/** Retries `fn` while the agent (re)connects, for up to 20 s; throws its last failure. */
async function retrying<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 20_000
  for (;;) {
    try {
      return await fn()
    } catch (err) {
      if (Date.now() > deadline) throw err
      await new Promise((r) => setTimeout(r, 200))
    }
  }
}

/**
 * Validates `token` against the agent's revocation feed until it is refused (or a generous deadline
 * passes): the refusal's code, or undefined when it was still accepted. No time is asserted.
 */
async function untilRefused(token: string): Promise<string | undefined> {
  const bundles = await retrying(jwtBundles)
  const newBackoff = () => new LinearBackoff({ initialDelayMs: 100, maxDelayMs: 300 })
  const revocations = await retrying(() =>
    RevocationSource.create({ endpoint: stack.socketPath, newBackoff }),
  )
  try {
    const deadline = Date.now() + 15_000
    for (;;) {
      const code = await codeOf(validateTaskToken(token, bundles, { audience: AUD, revocations }))
      if (code !== undefined || Date.now() > deadline) return code
      await new Promise((r) => setTimeout(r, 50))
    }
  } finally {
    revocations.close()
  }
}

/** A child process that begins a task and then idles: its pid, task id and token. */
async function taskChild(): Promise<{ child: ChildProcess; taskId: string; token: string }> {
  const started = await startTaskChild(stack.socketPath, params, { closeClient: true })
  children.push(started.child)
  return started
}

const serverAudit = () => readAuditLines(join(stack.dir, 'server', 'audit.log'))

describe('known task audiences', () => {
  it('refuses an audience no --task-audience allows, mints nothing and audits it; the own trust domain is known', async () => {
    await withClient(async (c) => {
      const own = await c.beginTask({ ...params, audiences: [`spiffe://${TD}/tools/a`, AUD] })
      await c.endTask(own.taskId)
      const refused = c.beginTask({ ...params, audiences: [AUD, 'https://evil.example'] })
      expect(await codeOf(refused)).toBe('ERR_TASK_AUDIENCE_UNKNOWN')
    })
    const denied = (await serverAudit()).filter(
      (r) => r['event'] === 'svid.denied' && r['code'] === 'ERR_TASK_AUDIENCE_UNKNOWN',
    )
    expect(denied).toHaveLength(1)
    expect(denied[0]).toMatchObject({ outcome: 'denied', kind: 'task', audience: ['https://evil.example'] })
  })
})

describe('a server restart', () => {
  it('keeps its tasks: a live one renews and ends (its token then refused), an ended one stays ended', async () => {
    const c = TaskClient.connect({ endpoint: stack.socketPath })
    try {
      const live = await c.beginTask(params)
      const ended = await c.beginTask(params)
      await c.endTask(ended.taskId)
      await stack.stopServer()
      await stack.startServer()
      const renewed = await retrying(() => c.beginTask(params, live.taskId))
      expect(renewed.taskId).toBe(live.taskId)
      expect(await codeOf(c.beginTask(params, ended.taskId))).toBe('ERR_TASK_ENDED')
      await c.endTask(live.taskId)
      expect(await untilRefused(renewed.token)).toBe('ERR_CREDENTIAL_REVOKED')
    } finally {
      c.close()
    }
  })
})

/** The task as the agent lists it to this process (same uid and entry), once it answers. */
async function listed(taskId: string) {
  return (await retrying(() => withClient((c) => c.listTasks()))).find((t) => t.taskId === taskId)
}

async function killed(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r))
  child.kill('SIGKILL')
  await exited
}

describe('an agent restart', () => {
  it('keeps watching the process that began a task: killed after the restart, its token is refused', async () => {
    const { child, taskId, token } = await taskChild()
    await stack.restartAgent()
    const watched = await listed(taskId)
    expect(watched?.pid).toBe(child.pid)
    expect(watched?.endReason).toBeUndefined()
    const saved = await stat(join(stack.dir, 'agent', 'tasks.json'))
    expect(saved.mode & 0o777).toBe(0o600)
    await killed(child)
    expect(await untilRefused(token)).toBe('ERR_CREDENTIAL_REVOKED')
    expect(await listed(taskId)).toMatchObject({ endReason: 'exited' })
  })

  it('ends, at its start, the task of a process that died while it was down', async () => {
    const { child, taskId, token } = await taskChild()
    await stack.agent().stop()
    await killed(child)
    await stack.restartAgent()
    expect(await untilRefused(token)).toBe('ERR_CREDENTIAL_REVOKED')
    expect(await listed(taskId)).toMatchObject({ endReason: 'exited' })
  })
})
