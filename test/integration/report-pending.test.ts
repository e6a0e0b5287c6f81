import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { status } from '@grpc/grpc-js'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { PendingWorkload } from '../../common/gen/tessera/agent/v1/PendingWorkload.js'
import { AgentApiFixture, rawCall } from '../helpers/agent-api-fixture.js'
import { jsonOf, runCli } from '../helpers/processes.js'
import { expectRefused } from '../helpers/sync-recorder.js'

let fx: AgentApiFixture

beforeAll(async () => {
  fx = await AgentApiFixture.start()
})
afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') console.error(`--- server output ---\n${fx.server.output()}`)
})
afterAll(async () => {
  await fx?.cleanup()
})

const HASH = 'ab'.repeat(32)

function workload(overrides: Partial<PendingWorkload> = {}): PendingWorkload {
  return {
    uid: 1234,
    user_name: 'someone',
    gid: 1234,
    exe_path: '/opt/tools/thing',
    sha256: HASH,
    cgroup: '/user.slice',
    parent_exe: '/usr/bin/bash',
    first_seen_ms: 1,
    last_seen_ms: 2,
    count: 3,
    ...overrides,
  }
}

interface ListJson {
  readonly requests: Array<{ agent_id: string; exe_path: string; count: number; uid: number }>
  readonly dropped: number
}
const list = async () =>
  jsonOf<ListJson>(
    await runCli(['approval', 'list', '--all', '--output', 'json'], { socket: fx.server.adminSocket }),
  )

describe('ReportPending (agent API)', () => {
  it("stores an agent's report as a pending request of that agent, counting repeats toward it", async () => {
    const agent = await fx.attest()
    await agent.client.reportPending([workload({ exe_path: '/opt/tools/counted' })], 0)
    await agent.client.reportPending([workload({ exe_path: '/opt/tools/counted', count: 4 })], 0)
    const found = (await list()).requests.filter((r) => r.exe_path === '/opt/tools/counted')
    expect(found).toEqual([expect.objectContaining({ agent_id: agent.agentId, count: 7, uid: 1234 })])
  })

  it('refuses malformed reports whole, and stores nothing of them', async () => {
    const agent = await fx.attest()
    const before = (await list()).requests.length
    const bad: Array<[Partial<PendingWorkload>, string]> = [
      [{ sha256: 'not-hex' }, 'ERR_REQUEST_INVALID'],
      [{ sha256: HASH.toUpperCase() }, 'ERR_REQUEST_INVALID'],
      [{ exe_path: 'relative/path' }, 'ERR_REQUEST_INVALID'],
      [{ exe_path: '/with\nnewline' }, 'ERR_REQUEST_INVALID'],
      [{ parent_exe: 'bash' }, 'ERR_REQUEST_INVALID'],
      [{ user_name: 'x'.repeat(300) }, 'ERR_REQUEST_INVALID'],
      [{ count: 0 }, 'ERR_REQUEST_INVALID'],
    ]
    for (const [overrides, code] of bad) {
      const items = [workload({ exe_path: '/opt/tools/good' }), workload(overrides)]
      await expectRefused(agent.client.reportPending(items, 0), status.INVALID_ARGUMENT, code)
    }
    const many = Array.from({ length: 257 }, (_, i) => workload({ exe_path: `/opt/many/${i}` }))
    await expectRefused(
      agent.client.reportPending(many, 0),
      status.RESOURCE_EXHAUSTED,
      'ERR_REQUEST_TOO_LARGE',
    )
    expect((await list()).requests.length).toBe(before)
  })

  it('refuses a caller without an agent SVID', async () => {
    await fx.attest()
    const raw = fx.rawClient()
    const err = await rawCall((cb) => raw.ReportPending({ workloads: [workload()], dropped: 0 }, cb)).then(
      () => undefined,
      (e: { code: number }) => e,
    )
    expect(err?.code).toBe(status.PERMISSION_DENIED)
  })

  it('counts the drops agents report and audits the first only', async () => {
    const agent = await fx.attest()
    const dropped = (await list()).dropped
    await agent.client.reportPending([], 5)
    await agent.client.reportPending([], 2)
    expect((await list()).dropped).toBe(dropped + 7)
    const audit = await readFile(join(fx.server.dataDir, 'audit.log'), 'utf8')
    expect(audit.split('\n').filter((l) => l.includes('ERR_PENDING_LIMIT'))).toHaveLength(1)
  })
})
