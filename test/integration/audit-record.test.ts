import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type PipedChild, spawnPiped, stopChild, untilEnd } from '../helpers/child-process.js'
import { type GatewayProcess, send } from '../helpers/gateway.js'
import {
  type AuditFile,
  bearer,
  CLAUDE,
  type GatewayStack,
  startGatewayStack,
} from '../helpers/gateway-stack.js'
import { jsonOf } from '../helpers/processes.js'
import { PROBE_PATH, type Stack, startStack } from '../helpers/stack.js'
import { unknownBinary } from '../helpers/unknown-binary.js'

/**
 * What an audit record says (issue 7 item 5, DESIGN §10 last bullet), with real processes: the
 * gateway's correlation id reaches the tool and its audit line, with the caller as actor and the
 * tool as resource; an approval can be followed by its request id from the request to the entry,
 * and `tessera audit search --correlation-id` finds it.
 */

const WAITER_PATH = fileURLToPath(new URL('../helpers/waiting-workload.mjs', import.meta.url))
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`

type Line = Record<string, unknown>

async function until<T>(what: string, get: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await get()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

async function linesOf(path: string): Promise<Line[]> {
  const text = await readFile(path, 'utf8').catch(() => '')
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Line)
}

describe('the gateway’s audit line and the correlation id', () => {
  let env: GatewayStack
  let gateway: GatewayProcess
  let audit: AuditFile

  beforeAll(async () => {
    env = await startGatewayStack()
    ;({ gateway, audit } = await env.startGateway([], 'record-audit.log'))
  })
  afterAll(async () => {
    await env?.stop()
  })

  it('takes the caller’s traceparent trace id, passes it to the tool, and writes it with actor and tool', async () => {
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'search', arguments: {} },
    })
    const headers = {
      ...bearer(await env.agentToken(CLAUDE)),
      'content-type': 'application/json',
      traceparent: TRACEPARENT,
      'x-request-id': 'ignored-when-there-is-a-traceparent',
    }
    const answer = await send(gateway.port, { method: 'POST', path: '/mcp', body, headers })
    expect(answer.status, answer.body).toBe(200)
    const seen = JSON.parse(answer.body) as { headers: Record<string, string> }
    expect(seen.headers['x-request-id']).toBe(TRACE_ID)
    expect(seen.headers['traceparent']).toBe(TRACEPARENT)
    expect(await audit.last()).toMatchObject({
      event: 'call.allowed',
      outcome: 'allowed',
      actor: CLAUDE,
      action: 'POST',
      resource: 'search',
      path: '/mcp',
      tools: ['search'],
      correlationId: TRACE_ID,
    })
  })

  it('takes a valid X-Request-Id, replaces an invalid one, and writes the id on a refusal too', async () => {
    const token = await env.agentToken(CLAUDE)
    const mine = await send(gateway.port, { headers: { ...bearer(token), 'x-request-id': 'task-42.step-1' } })
    expect(JSON.parse(mine.body).headers['x-request-id']).toBe('task-42.step-1')
    expect(await audit.last()).toMatchObject({
      actor: CLAUDE,
      resource: '/tools/echo',
      correlationId: 'task-42.step-1',
    })

    const junk = await send(gateway.port, { headers: { ...bearer(token), 'x-request-id': 'a b "c"' } })
    const made = JSON.parse(junk.body).headers['x-request-id'] as string
    expect(made).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(await audit.last()).toMatchObject({ correlationId: made })

    const refused = await send(gateway.port, { headers: { 'x-request-id': 'no-token-1' } })
    expect(refused.status).toBe(401)
    expect(await audit.last()).toMatchObject({
      event: 'call.denied',
      actor: expect.stringMatching(/^remote:/),
      correlationId: 'no-token-1',
    })

    const found = await env.stack.cli([
      'audit',
      'search',
      '--correlation-id',
      TRACE_ID,
      '--output',
      'json',
      audit.path,
    ])
    expect(found.code, found.stderr).toBe(0)
    const { lines } = jsonOf<{ lines: Line[] }>(found)
    expect(lines).toEqual([
      expect.objectContaining({ correlation_id: TRACE_ID, resource: 'search', actor: CLAUDE }),
    ])
  })
})

describe('an approval followed by its request id', () => {
  let stack: Stack
  const waiters: PipedChild[] = []

  beforeAll(async () => {
    stack = await startStack({})
  })
  afterEach(async (ctx) => {
    for (const w of waiters.splice(0)) await stopChild(w.child, 'SIGKILL')
    if (ctx.task.result?.state === 'fail') console.log(stack.output())
  })
  afterAll(async () => {
    await stack?.stop()
  })

  it('refusal → approval.requested → approval.approved → entry → SVID, found by audit search', async () => {
    const exe = await unknownBinary(stack, 'followed-tool')
    const waiter = spawnPiped(exe, [WAITER_PATH, stack.socketPath])
    waiters.push(waiter)
    const serverLog = join(stack.dir, 'server', 'audit.log')
    const agentLog = join(stack.dir, 'agent', 'audit.log')
    const requested = await until('approval.requested', async () =>
      (await linesOf(serverLog)).find((l) => l['event'] === 'approval.requested' && l['resource'] === exe),
    )
    const requestId = requested['correlationId'] as string
    expect(requested).toMatchObject({
      outcome: 'allowed',
      action: 'request',
      actor: expect.stringMatching(/^spiffe:\/\/tessera\.local\/tessera\/agent\//),
      uid: process.getuid?.(),
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    })
    // The agent's refusal of the waiting process: its own call id, the process as actor.
    const refusal = (await linesOf(agentLog)).find(
      (l) => l['event'] === 'call.denied' && l['code'] === 'ERR_NO_IDENTITY',
    )
    expect(refusal).toMatchObject({
      actor: expect.stringMatching(/^unix:uid:\d+:pid:\d+$/),
      correlationId: expect.any(String),
    })

    // More refusals count toward the request: still one approval.requested line.
    await until('more refusals counted', async () => {
      const listed = jsonOf<{ requests: Array<{ id: string; count: number }> }>(
        await stack.cli(['approval', 'list', '--output', 'json']),
      )
      const r = listed.requests.find((x) => x.id === requestId)
      return r !== undefined && r.count > 1 ? r : undefined
    })
    // Another path of the same binary, denied (before the approval, which pins the hash both share).
    const other = await unknownBinary(stack, 'denied-tool')
    await untilEnd(spawnPiped(other, [PROBE_PATH, stack.socketPath, 'x509']))
    const otherId = await until('the other request', async () => {
      const listed = jsonOf<{ requests: Array<{ id: string; exe_path: string }> }>(
        await stack.cli(['approval', 'list', '--output', 'json']),
      )
      return listed.requests.find((r) => r.exe_path === other)?.id
    })
    expect((await stack.cli(['approval', 'deny', '--id', otherId])).code).toBe(0)
    const denied = await stack.cli([
      'audit',
      'search',
      '--correlation-id',
      otherId,
      '--output',
      'json',
      serverLog,
    ])
    expect(jsonOf<{ lines: Line[] }>(denied).lines).toEqual([
      expect.objectContaining({ event: 'approval.requested', resource: other }),
      expect.objectContaining({
        event: 'approval.denied',
        action: 'deny',
        resource: other,
        actor: expect.stringMatching(/^admin:uid:\d+$/),
        denied_until: expect.any(Number),
      }),
    ])

    const spiffeId = 'spiffe://tessera.local/agents/followed'
    const approve = ['approval', 'approve', '--id', requestId, '--spiffe-id', spiffeId, '--for', '1h']
    const approved = jsonOf<{ entry: { id: string } }>(await stack.cli([...approve, '--output', 'json']))
    await until('the waiting process served', async () =>
      waiter.output.stdout().includes('"svid"') ? true : undefined,
    )

    const found = await stack.cli([
      'audit',
      'search',
      '--correlation-id',
      requestId,
      '--output',
      'json',
      serverLog,
    ])
    expect(found.code, found.stderr).toBe(0)
    const { lines } = jsonOf<{ lines: Line[] }>(found)
    expect(lines.map((l) => l['event'])).toEqual(['approval.requested', 'entry.changed', 'approval.approved'])
    expect(lines[2]).toMatchObject({
      actor: expect.stringMatching(/^admin:uid:\d+$/),
      action: 'approve',
      resource: spiffeId,
      entry_id: approved.entry.id,
      expires_at: expect.any(Number),
    })
    // The first SVID of that entry, on the agent.
    const issued = await until('svid.issued for the entry', async () =>
      (await linesOf(agentLog)).find(
        (l) => l['event'] === 'svid.issued' && l['entryId'] === approved.entry.id,
      ),
    )
    expect(issued).toMatchObject({ resource: spiffeId, action: 'issue', correlationId: expect.any(String) })

    // The new lines keep the chain: verify passes on both files (the test runner, a copy of the
    // approved binary, now has an identity to fetch the bundle with).
    const verified = await stack.cli(['audit', 'verify', '--live', serverLog, agentLog])
    expect(verified.code, verified.stderr).toBe(0)
  })
})
