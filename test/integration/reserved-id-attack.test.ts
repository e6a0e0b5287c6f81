import type { ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { spawnPiped } from '../helpers/child-process.js'
import { CLI_PATH, jsonOf, waitFor } from '../helpers/processes.js'
import { type Stack, startStack } from '../helpers/stack.js'

const ATTACKER = fileURLToPath(new URL('../helpers/fake-server-attacker.mjs', import.meta.url))
const myUid = process.getuid?.() ?? 0
let stack: Stack
const spawned: ChildProcess[] = []

/** Starts a child, collecting its output. */
function start(args: string[]): { child: ChildProcess; output: () => string } {
  const { child, output } = spawnPiped(process.execPath, args)
  spawned.push(child)
  return { child, output: output.all }
}

beforeAll(async () => {
  stack = await startStack()
})
beforeEach((ctx) => ctx.onTestFailed(() => console.error(stack.output())))
afterAll(async () => {
  for (const child of spawned) child.kill('SIGKILL')
  await stack?.stop()
})

describe('an entry for the server’s own ID (the attack reserved IDs close)', () => {
  it('cannot be created, so no workload can pose as the server to a new agent and take its join token', async () => {
    const serverId = `spiffe://${stack.trustDomain}/tessera/server`
    // 1. An admin (tricked, or careless) registers the server's ID for a workload of this uid.
    const create = await stack.cli([
      'entry',
      'create',
      '--spiffe-id',
      serverId,
      '--parent-id',
      stack.agentAlias,
      '--selector',
      `unix:uid:${myUid}`,
    ])

    // 2. The attacking workload fetches its SVID (waiting for the entry to reach the agent, if it exists).
    const stolen = join(stack.dir, 'stolen')
    const hasServerSvid = async () => {
      const fetched = await stack.cli(['api', 'fetch', 'x509', '--write', stolen, '--output', 'json'])
      return (
        fetched.code === 0 &&
        jsonOf<{ svids: { spiffe_id: string }[] }>(fetched).svids[0]?.spiffe_id === serverId
      )
    }
    let isServer = await hasServerSvid()
    for (let i = 0; create.code === 0 && !isServer && i < 50; i++) isServer = await hasServerSvid()

    // 3. With it, the attacker serves the agent API, and a new agent bootstrapping with the real
    //    trust bundle and a fresh join token is pointed at it.
    let captured: string | undefined
    if (isServer && existsSync(join(stolen, 'svid.key'))) {
      const attacker = start([ATTACKER, stolen])
      await waitFor(() => attacker.output().includes('"port"'), { timeoutMs: 10_000 })
      const port = /"port":(\d+)/.exec(attacker.output())?.[1]
      const token = jsonOf<{ token: string }>(
        await stack.cli(['token', 'generate', '--output', 'json']),
      ).token
      const agent = start([
        CLI_PATH,
        'agent',
        'run',
        '--data-dir',
        join(stack.dir, 'new-agent'),
        '--server-address',
        `127.0.0.1:${port}`,
        '--trust-domain',
        stack.trustDomain,
        '--trust-bundle',
        join(stack.dir, 'bundle.pem'),
        '--join-token',
        token,
      ])
      await waitFor(() => attacker.output().includes('captured') || agent.child.exitCode !== null, {
        timeoutMs: 15_000,
      }).catch(() => undefined)
      captured = /"captured":"([^"]*)"/.exec(attacker.output())?.[1]
    }
    // Asserted last, so that without the fix the test shows how far the attack went.
    expect(captured, 'the fake server captured the new agent’s join token').toBeUndefined()
    expect(isServer, 'the workload got an SVID for the server’s ID').toBe(false)
    expect([create.code, create.stderr]).toEqual([1, expect.stringMatching(/^error ERR_ENTRY_ID_RESERVED: /)])
  })
})
