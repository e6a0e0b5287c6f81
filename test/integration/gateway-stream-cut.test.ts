import { once } from 'node:events'
import { readFile, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseX509SvidPem } from '../../lib/core/x509/x509-svid.js'
import { TaskClient } from '../../lib/workload/task-client.js'
import { type Call, type GatewayProcess, send } from '../helpers/gateway.js'
import {
  AUD,
  type AuditFile,
  bearer,
  CLAUDE,
  type GatewayStack,
  startGatewayStack,
  TD,
} from '../helpers/gateway-stack.js'
import { type McpTool, startMcpTool } from '../helpers/mcp-tool.js'
import { type OpenStream, openStream } from '../helpers/open-stream.js'
import { waitFor } from '../helpers/processes.js'

/**
 * Issue 8 item 2 for streamed replies, with real server, agent and gateway processes in front of the
 * official MCP SDK server: the session's GET notification stream (`text/event-stream`) opened with a
 * task token, a JWT-SVID or an mTLS client X509-SVID ends cleanly, after its last whole event, when
 * that credential is revoked (`tessera task end`, `svid revoke`) or expires; the upstream's stream is
 * closed with it and the cut audited (`gateway.stream.cut`).
 */

const POLICY = {
  rules: [{ name: 'agents', effect: 'allow', spiffeIds: [`spiffe://${TD}/agents/*`], paths: ['/mcp'] }],
  default: 'deny',
}
const PROTOCOL = '2025-06-18'

let env: GatewayStack
let mcp: McpTool
let gateway: GatewayProcess
let tlsGateway: GatewayProcess
let audit: AuditFile
let tlsAudit: AuditFile
let tasks: TaskClient
let raw: Server
let rawGateway: GatewayProcess
let rawAudit: AuditFile
const rawSeen: string[] = []
const gateways: GatewayProcess[] = []

beforeAll(async () => {
  env = await startGatewayStack()
  mcp = await startMcpTool()
  const policyPath = join(env.stack.dir, 'stream-policy.json')
  await writeFile(policyPath, JSON.stringify(POLICY))
  const start = async (extra: string[], file: string) => {
    const started = await env.startGatewayBefore(
      `http://127.0.0.1:${mcp.port}`,
      ['--policy', policyPath, '--throttle-failures', '50', ...extra],
      file,
    )
    gateways.push(started.gateway)
    return started
  }
  ;({ gateway, audit } = await start([], 'stream-audit.log'))
  ;({ gateway: tlsGateway, audit: tlsAudit } = await start(['--tls'], 'stream-tls-audit.log'))
  tasks = TaskClient.connect({ endpoint: env.stack.socketPath })
  raw = startRawUpstream()
  await once(raw.listen(0, '127.0.0.1'), 'listening')
  const rawUpstream = `http://127.0.0.1:${(raw.address() as AddressInfo).port}`
  const rawFlags = ['--throttle-failures', '50']
  ;({ gateway: rawGateway, audit: rawAudit } = await env.startGatewayBefore(
    rawUpstream,
    rawFlags,
    'stream-raw-audit.log',
  ))
  gateways.push(rawGateway)
})

/**
 * An upstream whose replies stay open: `/partial` an event stream whose second event is sent only
 * in part (with the first, in one write), `/chunked` a chunked text reply, `/silent` no answer at all.
 */
function startRawUpstream(): Server {
  return createServer((req, res) => {
    rawSeen.push(req.url ?? '')
    if (req.url === '/partial') {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write('data: whole\n\ndata: half of an eve')
    } else if (req.url === '/chunked') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      res.write('part of a download')
    }
  })
}

afterAll(async () => {
  tasks?.close()
  for (const g of gateways) await g.stop()
  raw?.closeAllConnections()
  raw?.close()
  await env?.stop()
  await mcp?.close()
})

const jsonRpc = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }

/** An initialized MCP session through the gateway on `port`; returns its id. */
async function newSession(port: number, call: Omit<Call, 'path' | 'method' | 'body'>): Promise<string> {
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    send(port, {
      ...call,
      method: 'POST',
      path: '/mcp',
      headers: { ...call.headers, ...jsonRpc, ...headers },
      body: JSON.stringify(body),
    })
  const init = await post({
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
  })
  expect(init.status, init.body).toBe(200)
  const sessionId = String(init.headers['mcp-session-id'])
  const session = { 'mcp-session-id': sessionId, 'mcp-protocol-version': PROTOCOL }
  expect((await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, session)).status).toBe(202)
  return sessionId
}

/**
 * The session's GET notification stream through the gateway, once it carries one whole event
 * (a `tools/list_changed` the server announced), so a cut has an event to keep whole.
 */
async function openNotifications(
  port: number,
  call: Omit<Call, 'path'>,
): Promise<OpenStream & { readonly upstreamStreams: number }> {
  const sessionId = await newSession(port, call)
  const streamsBefore = mcp.openNotificationStreams()
  const stream = await openStream(port, {
    ...call,
    path: '/mcp',
    headers: {
      ...call.headers,
      accept: 'text/event-stream',
      'mcp-session-id': sessionId,
      'mcp-protocol-version': PROTOCOL,
    },
  })
  expect(stream.status).toBe(200)
  expect(stream.headers['content-type']).toBe('text/event-stream')
  await waitFor(() => mcp.openNotificationStreams() > streamsBefore, { timeoutMs: 30_000 })
  await mcp.announceToolsChanged()
  await waitFor(() => stream.text().includes('notifications/tools/list_changed'), { timeoutMs: 30_000 })
  return Object.assign(stream, { upstreamStreams: mcp.openNotificationStreams() })
}

/** Expects a clean end after whole events only, and the upstream's stream closed too. */
async function expectCleanEnd(
  stream: OpenStream & { readonly upstreamStreams: number },
  what: string,
  since: number,
): Promise<void> {
  expect(await stream.ended).toBe('end')
  console.log(`${what} → the stream ended ${Date.now() - since} ms later`)
  expect(stream.text()).toMatch(/\n\n$/)
  await waitFor(() => mcp.openNotificationStreams() < stream.upstreamStreams, { timeoutMs: 30_000 })
}

/** How many records the audit file holds now: {@link cutRecord} looks at later ones only. */
const recordCount = async (file: AuditFile) => (await file.records()).length

/** The gateway's `gateway.stream.cut` lines after the first `skip` records, polled until one matches `fields`. */
async function cutRecord(
  file: AuditFile,
  skip: number,
  fields: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  let found: Record<string, unknown> | undefined
  await waitFor(
    async () => {
      const cuts = (await file.records()).slice(skip).filter((r) => r['event'] === 'gateway.stream.cut')
      found = cuts.find((r) => Object.entries(fields).every(([k, v]) => r[k] === v))
      return found !== undefined
    },
    { timeoutMs: 30_000 },
  )
  return found ?? {}
}

const cli = (args: string[]) => env.stack.cli([...args, '--output', 'json'])
const claimsOf = (token: string) =>
  JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { jti: string }

describe('a notification stream through tessera gateway', () => {
  it('opened with a task token ends cleanly when `tessera task end` ends the task; the cut is audited with the task id', async () => {
    const task = await tasks.beginTask({
      audiences: [AUD],
      scopes: ['repo:read'],
      purpose: 'watch notifications',
      ttlMs: 600_000,
      spiffeId: CLAUDE,
    })
    const headers = { ...bearer(await env.agentToken(CLAUDE)), 'txn-token': task.token }
    const stream = await openNotifications(gateway.port, { headers })
    const skip = await recordCount(audit)
    const ended = await cli(['task', 'end', task.taskId])
    const since = Date.now()
    expect(ended.code, ended.stderr).toBe(0)
    await expectCleanEnd(stream, '`tessera task end` returned', since)
    expect(await cutRecord(audit, skip, { correlationId: task.taskId })).toMatchObject({
      outcome: 'denied',
      actor: CLAUDE,
      action: 'GET',
      resource: '/mcp',
      cause: 'revoked',
      code: 'ERR_CREDENTIAL_REVOKED',
      via: 'jwt',
    })
  })

  it('held by the MCP SDK client with a JWT-SVID is closed when `svid revoke --jti` revokes it', async () => {
    const token = await env.agentToken(CLAUDE)
    const url = new URL(`http://127.0.0.1:${gateway.port}/mcp`)
    const transport = new StreamableHTTPClientTransport(url, { requestInit: { headers: bearer(token) } })
    const client = new Client({ name: 'stream-agent', version: '1.0.0' })
    client.onerror = () => undefined // its reconnections are refused: expected here
    const streamsBefore = mcp.openNotificationStreams()
    await client.connect(transport)
    try {
      await waitFor(() => mcp.openNotificationStreams() > streamsBefore, { timeoutMs: 30_000 })
      const skip = await recordCount(audit)
      const revoked = await cli(['svid', 'revoke', '--jti', claimsOf(token).jti, '--reason', 'test'])
      const since = Date.now()
      expect(revoked.code, revoked.stderr).toBe(0)
      await waitFor(() => mcp.openNotificationStreams() === streamsBefore, { timeoutMs: 30_000 })
      console.log(
        `svid revoke --jti → SDK stream closed upstream: ${Date.now() - since} ms after the command`,
      )
      expect(await cutRecord(audit, skip, { via: 'jwt', cause: 'revoked', actor: CLAUDE })).toMatchObject({
        code: 'ERR_CREDENTIAL_REVOKED',
        resource: '/mcp',
      })
      await expect(client.listTools()).rejects.toThrow()
    } finally {
      await client.close().catch(() => undefined)
    }
  })

  it('opened with a short-lived task token ends cleanly when the token expires', async () => {
    // A busy machine can take longer than the token's life to open the stream: then the same is
    // tried with a token that lives twice as long, so that only the cut itself is judged.
    for (let ttlMs = 3_000; ; ttlMs *= 2) {
      const task = await tasks.beginTask({
        audiences: [AUD],
        scopes: ['repo:read'],
        purpose: 'a short watch',
        ttlMs,
        spiffeId: CLAUDE,
      })
      const headers = { ...bearer(await env.agentToken(CLAUDE)), 'txn-token': task.token }
      const skip = await recordCount(audit)
      const stream = await openNotifications(gateway.port, { headers }).catch((err: Error) => {
        if (Date.now() < task.expiresAtMs || ttlMs >= 48_000) throw err
        return undefined
      })
      if (stream === undefined) continue
      await expectCleanEnd(
        stream,
        `a task token with ${ttlMs / 1000} s to live opened the stream`,
        Date.now(),
      )
      expect(await cutRecord(audit, skip, { correlationId: task.taskId })).toMatchObject({
        cause: 'expired',
        code: 'ERR_JWT_EXPIRED',
      })
      return
    }
  })
})

describe('replies through tessera gateway when their JWT-SVID is revoked', () => {
  it('an event stream ends after its last whole event (the part of the next one is dropped), a chunked reply is cut off, an unanswered request is answered 401', async () => {
    const token = await env.agentToken(CLAUDE)
    const call = { headers: bearer(token) }
    const partial = await openStream(rawGateway.port, { ...call, path: '/partial' })
    const chunked = await openStream(rawGateway.port, { ...call, path: '/chunked' })
    const silent = openStream(rawGateway.port, { ...call, path: '/silent' })
    await waitFor(() => partial.text().length > 0 && chunked.text().length > 0, { timeoutMs: 30_000 })
    await waitFor(() => rawSeen.includes('/silent'), { timeoutMs: 30_000 })
    const skip = await recordCount(rawAudit)
    const revoked = await cli(['svid', 'revoke', '--jti', claimsOf(token).jti, '--reason', 'test'])
    expect(revoked.code, revoked.stderr).toBe(0)
    expect(await partial.ended).toBe('end')
    expect(partial.text()).toBe('data: whole\n\n')
    expect(await chunked.ended).toBe('cut')
    expect(chunked.text()).toBe('part of a download')
    const refused = await silent
    await refused.ended
    expect(refused.status).toBe(401)
    expect(JSON.parse(refused.text())).toMatchObject({ error: 'ERR_CREDENTIAL_REVOKED' })
    for (const resource of ['/partial', '/chunked', '/silent'])
      expect(await cutRecord(rawAudit, skip, { resource })).toMatchObject({
        cause: 'revoked',
        code: 'ERR_CREDENTIAL_REVOKED',
      })
  })
})

/** One request on `agent` (keep-alive): its status, error code, and whether it reused a connection. */
function onKeepAlive(
  port: number,
  agent: HttpsAgent,
): Promise<{ status: number; error?: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, path: '/mcp', agent, headers: { host: `127.0.0.1:${port}` } },
      (res) => {
        let body = ''
        res.on('data', (d: Buffer) => {
          body += d.toString()
        })
        res.on('end', () => {
          const error = res.statusCode === 401 ? (JSON.parse(body) as { error: string }).error : undefined
          resolve({
            status: res.statusCode ?? 0,
            ...(error !== undefined && { error }),
            reused: req.reusedSocket,
          })
        })
      },
    )
    req.on('error', reject)
    req.end()
  })
}

describe('mTLS through tessera gateway', () => {
  it('a revoked client X509-SVID: its stream ends cleanly, and its keep-alive connection serves no new request', async () => {
    const dir = join(env.stack.dir, 'stream-svid')
    const written = await env.stack.cli(['api', 'fetch', 'x509', '--write', dir])
    expect(written.code, written.stderr).toBe(0)
    const [cert, key, ca] = await Promise.all(
      ['svid.pem', 'svid.key', 'bundle.pem'].map((f) => readFile(join(dir, f))),
    )
    const tls = { ca, cert, key, checkServerIdentity: () => undefined }
    const agent = new HttpsAgent({ keepAlive: true, maxSockets: 1, ...tls })
    try {
      const stream = await openNotifications(tlsGateway.port, { tls })
      const serial = parseX509SvidPem(cert as Buffer, key as Buffer).certificates[0]?.serialHex ?? ''
      expect((await onKeepAlive(tlsGateway.port, agent)).status).not.toBe(401)
      const skip = await recordCount(tlsAudit)
      const revoked = await cli(['svid', 'revoke', '--serial', serial, '--reason', 'test'])
      const since = Date.now()
      expect(revoked.code, revoked.stderr).toBe(0)
      // Each request is checked, so the connection kept alive from before serves no new one.
      await waitFor(async () => (await onKeepAlive(tlsGateway.port, agent)).status === 401, {
        timeoutMs: 30_000,
      })
      expect(await onKeepAlive(tlsGateway.port, agent)).toEqual({
        status: 401,
        error: 'ERR_CREDENTIAL_REVOKED',
        reused: true,
      })
      await expectCleanEnd(stream, '`svid revoke --serial` returned', since)
      expect(await cutRecord(tlsAudit, skip, { via: 'mtls', cause: 'revoked' })).toMatchObject({
        code: 'ERR_CREDENTIAL_REVOKED',
      })
    } finally {
      agent.destroy()
    }
  })
})
