import { generateKeyPair } from 'node:crypto'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Call, type GatewayProcess, openWebSocket, send } from '../helpers/gateway.js'
import {
  type AuditFile,
  bearer,
  CLAUDE,
  type GatewayStack,
  INTRUDER,
  startGatewayStack,
} from '../helpers/gateway-stack.js'
import { waitFor } from '../helpers/processes.js'
import { encodeFrame } from '../helpers/ws-frames.js'

/**
 * `tessera gateway` (a real process) in front of an unauthenticated tool on a Unix socket, with a
 * real server and agent: JWT-SVIDs, Origin and Host rules, the policy, throttling, WebSockets, the
 * audit log. mTLS is in gateway-tls.test.ts.
 */

const generate = promisify(generateKeyPair)

let env: GatewayStack
let gateway: GatewayProcess
let audit: AuditFile

beforeAll(async () => {
  env = await startGatewayStack()
  // A block long enough for the throttle test's checks, however busy the machine.
  ;({ gateway, audit } = await env.startGateway(['--throttle-delay', '5s'], 'gateway-audit.log'))
})

afterAll(async () => {
  await env?.stop()
})

const agentToken = (id: string, audience?: string) => env.agentToken(id, audience)
const lastAudit = () => audit.last()

async function expectRefused(answer: { status: number; body: string }, status: number, code: string) {
  expect(answer.status, answer.body).toBe(status)
  expect(JSON.parse(answer.body)).toEqual({ error: code, message: expect.any(String) })
  expect(await lastAudit()).toMatchObject({ event: 'call.denied', outcome: 'denied', code })
}

const call = (c: Call = {}) => send(gateway.port, c)

describe('tessera gateway in front of an unauthenticated tool (JWT-SVIDs)', () => {
  it('an attested agent with its JWT-SVID gets through, and the tool sees its SPIFFE ID', async () => {
    const answer = await call({ headers: bearer(await agentToken(CLAUDE)) })
    expect(answer.status, answer.body).toBe(200)
    const seen = JSON.parse(answer.body) as { spiffeId: string; headers: Record<string, string> }
    expect(seen.spiffeId).toBe(CLAUDE)
    expect(seen.headers['x-tessera-auth-method']).toBe('jwt')
    expect(seen.headers['authorization']).toBeUndefined()
    expect(await lastAudit()).toMatchObject({
      event: 'call.allowed',
      outcome: 'allowed',
      caller: { kind: 'svid', spiffeId: CLAUDE },
      actor: CLAUDE,
      action: 'GET',
      resource: '/tools/echo',
      code: 'OK',
    })
  })

  it('no token: 401 with WWW-Authenticate, and the tool never sees the request', async () => {
    const before = env.tool.seen.length
    const answer = await call()
    await expectRefused(answer, 401, 'ERR_AUTH_MISSING')
    expect(answer.headers['www-authenticate']).toBe('Bearer')
    expect(env.tool.seen.length).toBe(before)
  })

  it.each([
    ['for another audience', () => agentToken(CLAUDE, 'other.audience'), 'ERR_JWT_AUDIENCE_MISMATCH'],
    [
      'expired',
      () => env.mintedToken('spiffe://partner.org/agents/p', env.partnerJwtKey, Date.now() - 3_600_000),
      'ERR_JWT_EXPIRED',
    ],
    [
      'from an untrusted trust domain',
      async () =>
        env.mintedToken(
          'spiffe://evil.example/agents/x',
          (await generate('ec', { namedCurve: 'P-256' })).privateKey,
        ),
      'ERR_BUNDLE_NOT_FOUND',
    ],
  ])('a token %s is refused', async (_what, make, code) => {
    const answer = await call({ headers: bearer(await make()) })
    await expectRefused(answer, 401, code)
    expect(answer.headers['www-authenticate']).toBe('Bearer error="invalid_token"')
  })

  it('a federated trust domain (partner.org) is honoured through its own bundle', async () => {
    const answer = await call({
      headers: bearer(await env.mintedToken('spiffe://partner.org/agents/p', env.partnerJwtKey)),
    })
    expect(answer.status, answer.body).toBe(200)
    expect(JSON.parse(answer.body).spiffeId).toBe('spiffe://partner.org/agents/p')
  })

  it('a client-sent identity header is stripped and replaced by the verified one', async () => {
    const headers = {
      ...bearer(await agentToken(CLAUDE)),
      'x-tessera-spiffe-id': 'spiffe://tessera.local/admin',
      'x-spiffe-id': 'spiffe://tessera.local/admin',
      'x-forwarded-client-cert': 'By=spiffe://tessera.local/admin',
    }
    const seen = JSON.parse((await call({ headers })).body) as {
      spiffeId: string
      headers: Record<string, unknown>
    }
    expect(seen.spiffeId).toBe(CLAUDE)
    expect(seen.headers['x-spiffe-id']).toBeUndefined()
    expect(seen.headers['x-forwarded-client-cert']).toBeUndefined()
  })

  it('a browser page from another origin is refused even with a valid token; an allowed origin passes', async () => {
    const token = await agentToken(CLAUDE)
    await expectRefused(
      await call({ headers: { ...bearer(token), origin: 'https://evil.example' } }),
      403,
      'ERR_ORIGIN_REFUSED',
    )
    expect((await call({ headers: { ...bearer(token), origin: 'https://app.example' } })).status).toBe(200)
  })

  it('a wrong Host (DNS rebinding) is refused; localhost is accepted', async () => {
    const token = await agentToken(CLAUDE)
    await expectRefused(
      await call({ headers: { ...bearer(token), host: `evil.example:${gateway.port}` } }),
      421,
      'ERR_HOST_REFUSED',
    )
    expect((await call({ headers: { ...bearer(token), host: `localhost:${gateway.port}` } })).status).toBe(
      200,
    )
  })

  it('the policy is evaluated per request: a deny rule is a 403 that names the caller in the audit', async () => {
    const token = await agentToken(INTRUDER)
    expect((await call({ path: '/tools/echo', headers: bearer(token) })).status).toBe(200)
    await expectRefused(
      await call({ path: '/admin/users', headers: bearer(token) }),
      403,
      'ERR_POLICY_DENIED',
    )
    expect(await lastAudit()).toMatchObject({
      caller: { kind: 'svid', spiffeId: INTRUDER },
      action: 'GET',
      resource: '/admin/users',
    })
    expect((await call({ path: '/admin/users', headers: bearer(await agentToken(CLAUDE)) })).status).toBe(200)
  })

  it('repeated failures are throttled with 429 and Retry-After, on every loopback address of that uid', async () => {
    // Per local uid, not per address (the other-uid side is in gateway-throttle.test.ts): this
    // process is throttled wherever it connects from, until the block has passed.
    const bad = bearer(await agentToken(CLAUDE, 'other.audience'))
    const good = bearer(await agentToken(CLAUDE))
    // This uid's earlier refused tokens (the tests above) count too: send until blocked.
    const statuses: number[] = []
    while (statuses.length < 25 && statuses.at(-1) !== 429)
      statuses.push((await call({ headers: bad, localAddress: '127.0.0.9' })).status)
    expect(statuses.at(-1)).toBe(429)
    expect(statuses.slice(0, -1).every((s) => s === 401)).toBe(true)
    const answer = await call({ headers: good, localAddress: '127.0.0.9' })
    await expectRefused(answer, 429, 'ERR_THROTTLED')
    expect(Number(answer.headers['retry-after'])).toBeGreaterThanOrEqual(1)
    expect((await call({ headers: good, localAddress: '127.0.0.1' })).status).toBe(429)
    await waitFor(async () => (await call({ headers: good })).status === 200, { timeoutMs: 30_000 })
  })

  it('MCP tool calls are read from the body: a denied tool is a JSON-RPC error, others reach the tool unchanged', async () => {
    const headers = { ...bearer(await agentToken(CLAUDE)), 'content-type': 'application/json' }
    const rpc = (name: string, id = 1) => ({
      jsonrpc: '2.0',
      id,
      method: 'tools/call',
      params: { name, arguments: {} },
    })
    const allowed = JSON.stringify(rpc('search'))
    const answer = await call({ method: 'POST', path: '/mcp', body: allowed, headers })
    expect(answer.status, answer.body).toBe(200)
    expect(JSON.parse(answer.body)).toMatchObject({ body: allowed, spiffeId: CLAUDE })
    const before = env.tool.seen.length
    const denied = (id: number) => ({
      jsonrpc: '2.0',
      id,
      error: { code: -32003, message: expect.any(String), data: { error: 'ERR_POLICY_DENIED' } },
    })
    const single = await call({ method: 'POST', path: '/mcp', body: JSON.stringify(rpc('shell')), headers })
    expect(single.status, single.body).toBe(200)
    expect(JSON.parse(single.body)).toEqual(denied(1))
    expect(await lastAudit()).toMatchObject({
      code: 'ERR_POLICY_DENIED',
      reason: expect.stringContaining('"shell"'),
    })
    const batch = JSON.stringify([
      rpc('search', 1),
      rpc('shell', 2),
      { jsonrpc: '2.0', method: 'notifications/x' },
    ])
    const batchAnswer = await call({ method: 'POST', path: '/mcp', body: batch, headers })
    expect(batchAnswer.status, batchAnswer.body).toBe(200)
    expect(JSON.parse(batchAnswer.body)).toEqual([denied(1), denied(2)])
    expect(await lastAudit()).toMatchObject({ event: 'call.denied', code: 'ERR_POLICY_DENIED' })
    expect(env.tool.seen.length).toBe(before)
    const hidden = { ...headers, 'content-encoding': 'gzip' }
    await expectRefused(
      await call({ method: 'POST', path: '/mcp', body: allowed, headers: hidden }),
      403,
      'ERR_POLICY_DENIED',
    )
  })

  it('a request body reaches the tool unchanged', async () => {
    const body = JSON.stringify({ hello: 'world' })
    const answer = await call({
      method: 'POST',
      body,
      headers: { ...bearer(await agentToken(CLAUDE)), 'content-type': 'application/json' },
    })
    expect(JSON.parse(answer.body)).toMatchObject({ method: 'POST', body })
    // Past the 1 MiB the gateway reads for tool names: the part read and the rest are both forwarded.
    const big = 'x'.repeat(1536 * 1024)
    const large = await call({ method: 'POST', body: big, headers: bearer(await agentToken(CLAUDE)) })
    expect(large.status).toBe(200)
    expect((JSON.parse(large.body) as { body: string }).body === big).toBe(true)
  })
})

describe('WebSocket upgrades through the gateway', () => {
  it('an upgrade without a token is refused on the raw socket and audited', async () => {
    const upgrade = await openWebSocket(gateway.port)
    expect(upgrade.isOpen).toBe(false)
    if (upgrade.isOpen) return
    await expectRefused(upgrade, 401, 'ERR_AUTH_MISSING')
    expect(await lastAudit()).toMatchObject({ action: 'GET', path: '/ws' })
  })

  it('a browser page opening a WebSocket from another origin is refused', async () => {
    const upgrade = await openWebSocket(gateway.port, {
      headers: { ...bearer(await agentToken(CLAUDE)), origin: 'https://evil.example' },
    })
    expect(upgrade.isOpen).toBe(false)
    if (!upgrade.isOpen) await expectRefused(upgrade, 403, 'ERR_ORIGIN_REFUSED')
  })

  it('with a token the upgrade is piped both ways and the tool sees the caller', async () => {
    const upgrade = await openWebSocket(gateway.port, { headers: bearer(await agentToken(CLAUDE)) })
    expect(upgrade.isOpen).toBe(true)
    if (!upgrade.isOpen) return
    for (const text of ['hello', 'x'.repeat(300)]) {
      upgrade.socket.write(encodeFrame(Buffer.from(text), { mask: true }))
      expect((await upgrade.frames.next()).payload.toString()).toBe(`${CLAUDE}|${text}`)
    }
    upgrade.socket.destroy()
    expect(await lastAudit()).toMatchObject({
      event: 'call.allowed',
      caller: { spiffeId: CLAUDE },
      action: 'GET',
      path: '/ws',
    })
  })
})

describe('the audit log and a tool that is down', () => {
  it('every decision is in the audit log with the caller and the code', async () => {
    const records = await audit.records()
    expect(records.length).toBeGreaterThanOrEqual(30)
    for (const r of records) {
      expect(r).toMatchObject({
        event: expect.stringMatching(/^call\.(allowed|denied)$/),
        action: expect.stringMatching(/^(GET|POST|WS)$/),
      })
      expect(r['time']).toEqual(expect.any(String))
      if (r['outcome'] === 'allowed')
        expect(r['caller']).toMatchObject({ kind: 'svid', spiffeId: expect.stringMatching(/^spiffe:\/\//) })
    }
    expect(JSON.stringify(records)).not.toMatch(/eyJ[A-Za-z0-9_-]{20,}/)
  })

  it('the upstream down: 502 with a JSON body', async () => {
    await env.tool.close()
    const answer = await call({ headers: bearer(await agentToken(CLAUDE)) })
    expect(answer.status).toBe(502)
    expect(JSON.parse(answer.body)).toEqual({
      error: 'ERR_UPSTREAM_UNAVAILABLE',
      message: expect.any(String),
    })
    const upgrade = await openWebSocket(gateway.port, { headers: bearer(await agentToken(CLAUDE)) })
    expect(upgrade.isOpen ? 101 : upgrade.status).toBe(502)
  })
})
