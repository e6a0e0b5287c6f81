import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LinearBackoff } from '../../lib/workload/backoff.js'
import { proofFetch } from '../../lib/workload/proof-fetch.js'
import { TaskSource } from '../../lib/workload/task-source.js'
import { WitSource } from '../../lib/workload/wit-source.js'
import { type GatewayProcess, openWebSocket, startGatewayProcess } from '../helpers/gateway.js'
import {
  AUD,
  AuditFile,
  bearer,
  CLAUDE,
  type GatewayStack,
  INTRUDER,
  startGatewayStack,
  TD,
} from '../helpers/gateway-stack.js'
import { type McpTool, startMcpTool } from '../helpers/mcp-tool.js'
import { waitFor } from '../helpers/processes.js'
import { encodeFrame } from '../helpers/ws-frames.js'

/**
 * Request-time intent policy (DESIGN §11) through real server, agent and `tessera gateway`
 * processes: task tokens from BeginTask in `Txn-Token`, rules on scopes, purpose, MCP methods and
 * proof of possession, in front of the official MCP SDK server (and its client) and, for
 * WebSocket messages, the echo tool.
 */

const MCP_POLICY = {
  rules: [
    {
      name: 'agents fix issues',
      effect: 'allow',
      spiffeIds: [`spiffe://${TD}/agents/*`],
      paths: ['/mcp'],
      scopes: ['repo:write'],
      purpose: 'fix issue *',
      proof: true,
    },
    { name: 'no resources', effect: 'deny', mcpMethods: ['resources/read'] },
  ],
  default: 'deny',
}
const WS_POLICY = {
  rules: [
    { name: 'agents', effect: 'allow', spiffeIds: [`spiffe://${TD}/agents/*`], paths: ['/ws'] },
    { name: 'no resources', effect: 'deny', mcpMethods: ['resources/read'] },
  ],
  default: 'deny',
}
const TASK = {
  audiences: [AUD],
  scopes: ['repo:read', 'repo:write'],
  purpose: 'fix issue 12',
  ttlMs: 600_000,
}

let env: GatewayStack
let mcp: McpTool
let mcpGateway: GatewayProcess
let wsGateway: GatewayProcess
let mcpAudit: AuditFile
let wsAudit: AuditFile
let wits: WitSource
const tasks: TaskSource[] = []

async function startGateway(policy: unknown, name: string, upstream: string) {
  const policyPath = join(env.stack.dir, `${name}-policy.json`)
  await writeFile(policyPath, JSON.stringify(policy))
  const audit = new AuditFile(join(env.stack.dir, `${name}-audit.log`))
  const gateway = await startGatewayProcess(
    [
      ...['--listen', '127.0.0.1:0', '--upstream', upstream, '--audience', AUD],
      ...['--policy', policyPath, '--throttle-failures', '50', '--audit-log-path', audit.path],
    ],
    { SPIFFE_ENDPOINT_SOCKET: `unix://${env.stack.socketPath}` },
  )
  return { gateway, audit }
}

beforeAll(async () => {
  env = await startGatewayStack()
  mcp = await startMcpTool()
  ;({ gateway: mcpGateway, audit: mcpAudit } = await startGateway(
    MCP_POLICY,
    'mcp',
    `http://127.0.0.1:${mcp.port}`,
  ))
  ;({ gateway: wsGateway, audit: wsAudit } = await startGateway(
    WS_POLICY,
    'ws',
    `unix://${env.tool.socketPath}`,
  ))
  const newBackoff = () => new LinearBackoff({ initialDelayMs: 100, maxDelayMs: 300 })
  wits = await WitSource.create({ endpoint: env.stack.socketPath, newBackoff })
})

afterAll(async () => {
  for (const task of tasks) await task.close().catch(() => undefined)
  wits?.close()
  await mcpGateway?.stop()
  await wsGateway?.stop()
  await mcp?.close()
  await env?.stop()
})

async function begin(over: Partial<typeof TASK> & { spiffeId?: string } = {}): Promise<TaskSource> {
  const task = await TaskSource.begin({ ...TASK, ...over, endpoint: env.stack.socketPath })
  tasks.push(task)
  return task
}

const mcpUrl = () => `http://127.0.0.1:${mcpGateway.port}/mcp`
const callMessage = (method: string, params: object) => ({ jsonrpc: '2.0', id: 7, method, params })
const echoCall = callMessage('tools/call', { name: 'echo', arguments: { text: 'hi' } })
/** A sessionless POST the MCP server answers: `initialize` (a tools/call needs a session). */
const initialize = callMessage('initialize', {
  protocolVersion: '2025-06-18',
  capabilities: {},
  clientInfo: { name: 'raw-agent', version: '1.0.0' },
})

/** A raw MCP POST through the gateway, with a proof (and the task token) unless told otherwise. */
async function post(
  message: unknown,
  options: { task?: string; proof?: boolean; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    ...(options.task !== undefined && { 'txn-token': options.task }),
    ...options.headers,
  }
  const send = options.proof === false ? fetch : proofFetch(wits, { taskToken: () => options.task })
  const res = await send(mcpUrl(), { method: 'POST', headers, body: JSON.stringify(message) })
  const text = await res.text()
  // The MCP server answers a call as an event stream (`data: {...}`), the gateway's refusals as JSON.
  const json = res.headers.get('content-type')?.startsWith('text/event-stream')
    ? (/^data: (.*)$/m.exec(text)?.[1] ?? '{}')
    : text
  return { status: res.status, body: JSON.parse(json) as Record<string, unknown> }
}

/** Expects the JSON-RPC error form of a refused MCP call with the gateway's code. */
function expectRpcRefusal(answer: { status: number; body: Record<string, unknown> }, code: string) {
  expect(answer.status, JSON.stringify(answer.body)).toBe(200)
  expect(answer.body).toMatchObject({ jsonrpc: '2.0', id: 7, error: { data: { error: code } } })
}

describe('an agent calls an MCP tool for a task, with proof, then ends the task (docs/tasks.md)', () => {
  it('the call passes while the task lives, the audit carries the task id, and after EndTask it is refused', async () => {
    const task = await begin()
    const transport = new StreamableHTTPClientTransport(new URL(mcpUrl()), {
      requestInit: { headers: { 'Txn-Token': task.token } },
      fetch: proofFetch(wits, { taskToken: () => task.token }),
    })
    const client = new Client({ name: 'intent-agent', version: '1.0.0' })
    await client.connect(transport)
    try {
      const result = await client.callTool({ name: 'echo', arguments: { text: 'fix it' } })
      expect(result.content).toEqual([{ type: 'text', text: `fix it from ${CLAUDE}` }])
      const byTask = async () => (await mcpAudit.records()).filter((r) => r['correlationId'] === task.taskId)
      await waitFor(async () => (await byTask()).length > 0, { timeoutMs: 10_000 })
      expect((await byTask())[0]).toMatchObject({ event: 'call.allowed', caller: { spiffeId: CLAUDE } })
      await task.close()
      // EndTask reaches the gateway through the server's revocation push: poll, never time it.
      await waitFor(async () => (await post(echoCall, { task: task.token })).status === 401, {
        timeoutMs: 20_000,
      })
      const after = await post(echoCall, { task: task.token })
      expect(after).toMatchObject({ status: 401, body: { error: 'ERR_CREDENTIAL_REVOKED' } })
      expect(await mcpAudit.last()).toMatchObject({
        outcome: 'denied',
        code: 'ERR_CREDENTIAL_REVOKED',
        correlationId: expect.any(String),
      })
      await expect(client.callTool({ name: 'echo', arguments: { text: 'again' } })).rejects.toThrow()
    } finally {
      await client.close().catch(() => undefined)
    }
  })
})

describe('intent rules at tessera gateway', () => {
  it('a rule requiring a scope: refused without the task token and with one lacking it, allowed with it', async () => {
    expectRpcRefusal(await post(echoCall), 'ERR_TASK_TOKEN_MISSING')
    const reader = await begin({ scopes: ['repo:read'] })
    expectRpcRefusal(await post(echoCall, { task: reader.token }), 'ERR_TASK_SCOPE_MISSING')
    expect(await mcpAudit.last()).toMatchObject({
      code: 'ERR_TASK_SCOPE_MISSING',
      correlationId: reader.taskId,
    })
    const writer = await begin()
    const ok = await post(initialize, { task: writer.token })
    expect(ok.status).toBe(200)
    expect(ok.body).toMatchObject({ id: 7, result: { serverInfo: { name: 'mcp-tool' } } })
    expect(await mcpAudit.last()).toMatchObject({ outcome: 'allowed', correlationId: writer.taskId })
  })

  it('a purpose the rule does not allow is refused, naming the rule', async () => {
    const task = await begin({ purpose: 'delete everything' })
    const answer = await post(echoCall, { task: task.token })
    expectRpcRefusal(answer, 'ERR_POLICY_DENIED')
    expect(JSON.stringify(answer.body)).toContain('agents fix issues')
  })

  it('a task token whose sub is another workload is refused', async () => {
    const lent = await begin({ spiffeId: INTRUDER })
    const answer = await post(echoCall, { task: lent.token })
    expect(answer).toMatchObject({ status: 403, body: { error: 'ERR_TASK_SUBJECT_MISMATCH' } })
    expect(await mcpAudit.last()).toMatchObject({
      code: 'ERR_TASK_SUBJECT_MISMATCH',
      caller: { spiffeId: CLAUDE },
    })
  })

  it('a proof rule refuses a bearer JWT-SVID, even with a valid task token', async () => {
    const task = await begin()
    const headers = bearer(await env.agentToken(CLAUDE))
    expectRpcRefusal(await post(echoCall, { task: task.token, proof: false, headers }), 'ERR_PROOF_MISSING')
  })

  it('an mcpMethods rule denies resources/read over HTTP', async () => {
    const task = await begin()
    const read = callMessage('resources/read', { uri: 'file:///etc/passwd' })
    const answer = await post(read, { task: task.token })
    expectRpcRefusal(answer, 'ERR_POLICY_DENIED')
    expect(JSON.stringify(answer.body)).toContain('no resources')
  })

  it('an mcpMethods rule is checked on every WebSocket message', async () => {
    const upgrade = await openWebSocket(wsGateway.port, { headers: bearer(await env.agentToken(CLAUDE)) })
    expect(upgrade.isOpen).toBe(true)
    if (!upgrade.isOpen) return
    const send = (message: unknown) =>
      upgrade.socket.write(encodeFrame(Buffer.from(JSON.stringify(message)), { mask: true }))
    const list = { jsonrpc: '2.0', id: 1, method: 'tools/list' }
    send(list)
    expect((await upgrade.frames.next()).payload.toString()).toBe(`${CLAUDE}|${JSON.stringify(list)}`)
    send(callMessage('resources/read', { uri: 'file:///etc/passwd' }))
    const closing = await upgrade.frames.next()
    expect(closing.payload.readUInt16BE(0)).toBe(1008)
    upgrade.socket.destroy()
    expect(await wsAudit.last()).toMatchObject({
      event: 'call.denied',
      action: 'WS',
      code: 'ERR_POLICY_DENIED',
      mcpMethods: ['resources/read'],
    })
  })
})
