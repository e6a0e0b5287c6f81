import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { jsonOf, runCli, waitFor } from '../helpers/processes.js'
import { probe, type Stack, startStack } from '../helpers/stack.js'

const TD = 'tessera.local'
const uid = process.getuid?.() ?? 0
const WEB = `spiffe://${TD}/workload/web`

let stack: Stack

beforeAll(async () => {
  stack = await startStack({ trustDomain: TD })
  await stack.registerEntry({ spiffeId: WEB, selectors: [`unix:uid:${uid}`] })
})
afterAll(async () => {
  await stack?.stop()
})
afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') console.error(stack?.output())
})

function admin(...args: string[]) {
  return runCli(args, { socket: stack.adminSocket })
}

async function agentIds(): Promise<string[]> {
  const { agents } = jsonOf<{ agents: { spiffe_id: string }[] }>(
    await admin('agent', 'list', '--output', 'json'),
  )
  return agents.map((a) => a.spiffe_id)
}

describe('an evicted agent', () => {
  let evicted: string

  it('stops with one coded line when the server cuts it off, no stack trace', async () => {
    const [id] = await agentIds()
    evicted = id ?? ''
    expect((await admin('agent', 'evict', '--spiffe-id', evicted)).code).toBe(0)
    const running = stack.agent()
    await waitFor(() => running.child.exitCode !== null, { timeoutMs: 20_000 })
    expect(running.child.exitCode).not.toBe(0)
    expect(running.output()).toMatch(/^error ERR_AGENT_UNAUTHORIZED: .*new join token/m)
    expect(running.output()).not.toMatch(/^\s+at /m)
  })

  it('started again without a token: one line, ERR_AGENT_UNAUTHORIZED, exit non-zero, no stack trace', async () => {
    const result = await runCli(stack.agentArgs(), { timeoutMs: 30_000 })
    expect(result.code).not.toBe(0)
    expect(result.stderr).toMatch(/^error ERR_AGENT_UNAUTHORIZED: [^\n]*new join token[^\n]*\n$/)
    expect(`${result.stdout}${result.stderr}`).not.toMatch(/^\s+at |"stack"/m)
  })

  it('started again with a new join token: attests afresh, says so in one line, and serves workloads', async () => {
    const token = jsonOf<{ token: string }>(
      await admin('token', 'generate', '--spiffe-id', stack.agentAlias, '--output', 'json'),
    ).token
    await stack.restartAgent(['--join-token', token])
    const said = stack
      .agent()
      .output()
      .split('\n')
      .filter((l) => l.includes('attesting afresh with the join token'))
    expect(said).toHaveLength(1)
    const ids = await agentIds()
    expect(ids).toHaveLength(1)
    expect(ids[0]).not.toBe(evicted)
    await waitFor(async () => (await probe(stack.socketPath, ['x509'])).ok, { timeoutMs: 20_000 })
    expect((await probe(stack.socketPath, ['x509'])).ids).toEqual([WEB])
  })
})
