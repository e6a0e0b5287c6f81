import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { McpError, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { GatewayProcess } from '../helpers/gateway.js'
import {
  type AuditFile,
  bearer,
  CLAUDE,
  type GatewayStack,
  startGatewayStack,
  TD,
} from '../helpers/gateway-stack.js'
import { type McpTool, startMcpTool } from '../helpers/mcp-tool.js'
import { waitFor } from '../helpers/processes.js'

/**
 * `tessera gateway` (a real process) in front of a real MCP server (the official SDK, Streamable HTTP,
 * sessions on, pinning its own Host), driven by the SDK's own client with the agent's JWT-SVID:
 * initialize, tools, a streamed reply with progress, the session's GET notification stream, a tool
 * the policy denies; and the MCP 2026-07-28 `Mcp-Method`/`Mcp-Name` headers checked against the body.
 */

const POLICY = {
  rules: [
    { name: 'agents use MCP', effect: 'allow', spiffeIds: [`spiffe://${TD}/agents/*`], paths: ['/mcp'] },
    { name: 'no shell over MCP', effect: 'deny', paths: ['/mcp'], tools: ['shell'] },
  ],
  default: 'deny',
}

let env: GatewayStack
let mcp: McpTool
let gateway: GatewayProcess
let audit: AuditFile
let token: string
let client: Client
let transport: StreamableHTTPClientTransport
const clientErrors: Error[] = []
const toolListChanges: number[] = []

const gatewayUrl = () => `http://127.0.0.1:${gateway.port}/mcp`

beforeAll(async () => {
  env = await startGatewayStack()
  mcp = await startMcpTool()
  const policyPath = join(env.stack.dir, 'mcp-policy.json')
  await writeFile(policyPath, JSON.stringify(POLICY))
  const extra = ['--policy', policyPath, '--throttle-failures', '20']
  ;({ gateway, audit } = await env.startGatewayBefore(`http://127.0.0.1:${mcp.port}`, extra, 'mcp-audit.log'))
  token = await env.agentToken(CLAUDE)
  transport = new StreamableHTTPClientTransport(new URL(gatewayUrl()), {
    requestInit: { headers: bearer(token) },
  })
  client = new Client({ name: 'test-agent', version: '1.0.0' })
  client.onerror = (err) => clientErrors.push(err)
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
    toolListChanges.push(Date.now())
  })
  await client.connect(transport)
})

afterAll(async () => {
  await client?.close()
  await gateway?.stop()
  await mcp?.close()
  await env?.stop()
})

/** A raw JSON-RPC POST through the gateway, as a client that sends the 2026-07-28 headers would. */
async function post(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(gatewayUrl(), {
    method: 'POST',
    headers: {
      ...bearer(token),
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...headers,
    },
    body: JSON.stringify(body),
  })
}

const toolCall = (id: number, name: string) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: { text: 'x' } },
})

describe('the MCP TypeScript SDK through tessera gateway', () => {
  it('initializes a session with a server that pins its own Host, and lists its tools', async () => {
    expect(client.getServerVersion()?.name).toBe('mcp-tool')
    expect(transport.sessionId).toEqual(expect.any(String))
    const { tools } = await client.listTools()
    expect(tools.map((t) => t.name)).toEqual(['echo', 'count', 'shell'])
    const last = mcp.seen.at(-1)!
    expect(last.headers.host).toBe(`127.0.0.1:${mcp.port}`)
    expect(last.headers['x-forwarded-host']).toBe(`127.0.0.1:${gateway.port}`)
  })

  it('calls a tool, which learns the verified caller from the gateway', async () => {
    const result = await client.callTool({ name: 'echo', arguments: { text: 'hello' } })
    expect(result.content).toEqual([{ type: 'text', text: `hello from ${CLAUDE}` }])
  })

  it('a streamed reply: progress notifications, then the result', async () => {
    const progress: number[] = []
    const result = await client.callTool({ name: 'count', arguments: { to: 3 } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
    })
    expect(progress).toEqual([1, 2, 3])
    expect(result.content).toEqual([{ type: 'text', text: 'counted to 3' }])
  })

  it("the session's GET notification stream delivers what the server announces", async () => {
    await waitFor(() => mcp.openNotificationStreams() >= 1, { timeoutMs: 10_000 })
    const before = toolListChanges.length
    await mcp.announceToolsChanged()
    await waitFor(() => toolListChanges.length > before, { timeoutMs: 10_000 })
  })

  it('a tool the policy denies is a JSON-RPC error for that call; the session goes on', async () => {
    const errorsBefore = clientErrors.length
    const refused = await client.callTool({ name: 'shell', arguments: {} }).catch((err: unknown) => err)
    expect(refused).toBeInstanceOf(McpError)
    expect(refused).toMatchObject({ code: -32003, data: { error: 'ERR_POLICY_DENIED' } })
    expect(clientErrors.slice(errorsBefore)).toEqual([])
    expect(mcp.calls).not.toContain('shell')
    expect(await audit.last()).toMatchObject({
      event: 'call.denied',
      caller: { kind: 'svid', spiffeId: CLAUDE },
      actor: CLAUDE,
      action: 'POST',
      path: '/mcp',
      resource: 'shell',
      code: 'ERR_POLICY_DENIED',
    })
    const after = await client.callTool({ name: 'echo', arguments: { text: 'still here' } })
    expect(after.content).toEqual([{ type: 'text', text: `still here from ${CLAUDE}` }])
  })
})

describe('MCP over raw HTTP through the gateway', () => {
  let sessionId: string

  beforeAll(async () => {
    const init = await post({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    })
    expect(init.status).toBe(200)
    sessionId = init.headers.get('mcp-session-id') ?? ''
    await init.body?.cancel()
    const initialized = await post(
      { jsonrpc: '2.0', method: 'notifications/initialized' },
      { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' },
    )
    expect(initialized.status).toBe(202)
  })

  const session = () => ({ 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' })

  it('the GET notification stream answers with its headers before any event', async () => {
    const streamsBefore = mcp.openNotificationStreams()
    const controller = new AbortController()
    // The server sends no keep-alive: with the headers held until the first event this never resolves.
    const answer = await fetch(gatewayUrl(), {
      headers: { ...bearer(token), accept: 'text/event-stream', ...session() },
      signal: controller.signal,
    })
    expect(answer.status).toBe(200)
    expect(answer.headers.get('content-type')).toBe('text/event-stream')
    expect(mcp.openNotificationStreams()).toBe(streamsBefore + 1)
    controller.abort()
  }, 30_000)

  it('a denied call in a batch answers every request of the batch, and nothing reaches the tool', async () => {
    const before = mcp.seen.length
    const answer = await post([toolCall(7, 'echo'), toolCall(8, 'shell')], session())
    expect(answer.status).toBe(200)
    const body = (await answer.json()) as Array<{ id: number; error: { code: number } }>
    expect(body.map((m) => [m.id, m.error.code])).toEqual([
      [7, -32003],
      [8, -32003],
    ])
    expect(mcp.seen.length).toBe(before)
  })

  it('Mcp-Method and Mcp-Name that match the body pass', async () => {
    const answer = await post(toolCall(9, 'echo'), {
      ...session(),
      'mcp-method': 'tools/call',
      'mcp-name': 'echo',
    })
    expect(answer.status).toBe(200)
    expect(await answer.text()).toContain(`x from ${CLAUDE}`)
  })

  it.each([
    [
      'an Mcp-Name naming an allowed tool over a call of another',
      toolCall(10, 'shell'),
      { 'mcp-name': 'echo' },
      10,
    ],
    ['an Mcp-Method other than the body', toolCall(11, 'echo'), { 'mcp-method': 'tools/list' }, 11],
    [
      'an Mcp-Name the body does not carry',
      { jsonrpc: '2.0', id: 12, method: 'tools/list' },
      { 'mcp-name': 'echo' },
      12,
    ],
    ['an Mcp-Method on a batch', [toolCall(13, 'echo')], { 'mcp-method': 'tools/call' }, null],
    ['an Mcp-Method with a body that is not JSON-RPC', 'not json', { 'mcp-method': 'tools/call' }, null],
  ])(
    '%s: 400 HeaderMismatch (-32001), ERR_MCP_HEADER_MISMATCH, audited',
    async (_what, body, headers, id) => {
      const before = mcp.seen.length
      const answer = await post(body, { ...session(), ...headers })
      expect(answer.status).toBe(400)
      expect(await answer.json()).toMatchObject({
        jsonrpc: '2.0',
        id,
        error: { code: -32001, data: { error: 'ERR_MCP_HEADER_MISMATCH' } },
      })
      expect(mcp.seen.length).toBe(before)
      expect(await audit.last()).toMatchObject({
        event: 'call.denied',
        caller: { kind: 'svid', spiffeId: CLAUDE },
        code: 'ERR_MCP_HEADER_MISMATCH',
      })
    },
  )
})
