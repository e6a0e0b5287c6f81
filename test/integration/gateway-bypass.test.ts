import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { flipS } from '../../lib/core/jwt/ecdsa-low-s.js'
import { type Call, type GatewayProcess, openWebSocket, send, type Upgrade } from '../helpers/gateway.js'
import {
  type AuditFile,
  bearer,
  CLAUDE,
  type GatewayStack,
  startGatewayStack,
  TD,
} from '../helpers/gateway-stack.js'
import { waitFor } from '../helpers/processes.js'
import { encodeFragments, encodeFrame, readUntilClose } from '../helpers/ws-frames.js'

/**
 * Issue 5 item 3, against the real `tessera gateway` with the test policy (`deny /mcp tool shell`,
 * everything else allowed for the agents): every spelling of `/mcp`, `Upgrade: h2c`, WebSocket
 * messages, a WebSocket that outlives its credential, and a malleated (high-S) token.
 */

const SHORT = `spiffe://${TD}/agents/short-lived`

let env: GatewayStack
let gateway: GatewayProcess
let audit: AuditFile
let shortEntry: string

beforeAll(async () => {
  env = await startGatewayStack()
  const uid = process.getuid?.() ?? 0
  shortEntry = await env.stack.registerEntry({
    spiffeId: SHORT,
    selectors: [`unix:uid:${uid}`],
    jwtTtl: '4s',
  })
  ;({ gateway, audit } = await env.startGateway([], 'bypass-audit.log'))
})

afterAll(async () => {
  await env?.stop()
})

const call = (c: Call) => send(gateway.port, c)
const rpc = (name: string, id = 1) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: {} },
})
const json = (token: string) => ({ ...bearer(token), 'content-type': 'application/json' })

async function lastRecordAbout(subject: string): Promise<Record<string, unknown> | undefined> {
  return (await audit.records())
    .filter((r) => `${String(r['action'])} ${String(r['path'])}` === subject)
    .at(-1)
}

async function openAs(token: string, path: string): Promise<Extract<Upgrade, { isOpen: true }>> {
  const upgrade = await openWebSocket(gateway.port, { path, headers: bearer(token) })
  if (!upgrade.isOpen) throw new Error(`the upgrade was refused: ${upgrade.status} ${upgrade.body}`)
  return upgrade
}

describe('one canonical path for the policy and for the tool', () => {
  it.each([
    ['/mcp/'],
    ['/MCP'],
    ['/Mcp/'],
    ['/mcp;x'],
    ['/mcp%3bx'],
    ['/%6dcp'],
    ['/./mcp'],
    ['//mcp'],
    ['/%252e/mcp'],
  ])('a tools/call for "shell" sent to %s is refused and never reaches the tool', async (path) => {
    const before = env.tool.seen.length
    const token = await env.agentToken(CLAUDE)
    const answer = await call({
      method: 'POST',
      path,
      body: JSON.stringify(rpc('shell')),
      headers: json(token),
    })
    // A denied MCP call is answered as a JSON-RPC error (200) whose data carries the code.
    expect([200, 400, 403], `${path}: ${answer.status} ${answer.body}`).toContain(answer.status)
    const body = JSON.parse(answer.body)
    const code = answer.status === 200 ? body.error?.data?.error : body.error
    expect(code, answer.body).toMatch(/^ERR_(PATH_INVALID|POLICY_DENIED)$/)
    expect(env.tool.seen.length).toBe(before)
  })

  it('/MCP and /mcp;x are 400 ERR_PATH_INVALID, audited', async () => {
    const token = await env.agentToken(CLAUDE)
    for (const path of ['/MCP', '/mcp;x']) {
      const answer = await call({
        method: 'POST',
        path,
        body: JSON.stringify(rpc('search')),
        headers: json(token),
      })
      expect(answer.status, answer.body).toBe(400)
      expect(JSON.parse(answer.body).error).toBe('ERR_PATH_INVALID')
      expect(await audit.last()).toMatchObject({ event: 'call.denied', code: 'ERR_PATH_INVALID' })
    }
  })

  it('an allowed call reaches the tool as the canonical path the policy decided on', async () => {
    const token = await env.agentToken(CLAUDE)
    const body = JSON.stringify(rpc('search'))
    const encoded = await call({ method: 'POST', path: '/%6dcp?x=1', body, headers: json(token) })
    expect(encoded.status, encoded.body).toBe(200)
    expect(JSON.parse(encoded.body)).toMatchObject({ url: '/mcp?x=1', body, spiffeId: CLAUDE })
    const slash = await call({ method: 'POST', path: '/mcp/', body, headers: json(token) })
    expect(JSON.parse(slash.body)).toMatchObject({ url: '/mcp/', body })
  })
})

describe('only WebSocket upgrades', () => {
  it('Upgrade: h2c with a valid token is refused (400 ERR_UPGRADE_REFUSED) and never relayed', async () => {
    const before = env.tool.seen.length
    const upgrade = await openWebSocket(gateway.port, {
      path: '/',
      headers: {
        ...bearer(await env.agentToken(CLAUDE)),
        connection: 'Upgrade, HTTP2-Settings',
        upgrade: 'h2c',
        'http2-settings': 'AAMAAABkAARAAAAAAAIAAAAA',
      },
    })
    expect(upgrade.isOpen).toBe(false)
    if (upgrade.isOpen) return
    expect(upgrade.status, upgrade.body).toBe(400)
    expect(JSON.parse(upgrade.body).error).toBe('ERR_UPGRADE_REFUSED')
    expect(await audit.last()).toMatchObject({ event: 'call.denied', code: 'ERR_UPGRADE_REFUSED' })
    expect(env.tool.seen.length).toBe(before)
  })

  it('a WebSocket upgrade to /MCP is refused like the request would be', async () => {
    const upgrade = await openWebSocket(gateway.port, {
      path: '/MCP',
      headers: bearer(await env.agentToken(CLAUDE)),
    })
    expect(upgrade.isOpen ? 101 : upgrade.status).toBe(400)
  })
})

describe('MCP policy on every WebSocket message', () => {
  it.each([
    ['whole', (text: string) => [encodeFrame(Buffer.from(text), { mask: true })]],
    ['fragmented', (text: string) => encodeFragments(text, 7)],
  ])(
    'on /mcp/, a %s tools/call for "shell" closes the WebSocket with 1008, unseen by the tool',
    async (_how, frames) => {
      const ws = await openAs(await env.agentToken(CLAUDE), '/mcp/')
      const search = JSON.stringify(rpc('search'))
      for (const frame of frames(search)) ws.socket.write(frame)
      // Allowed: it reaches the tool (fragment by fragment, as sent).
      await waitFor(() => env.tool.frames.join('').includes(search), { timeoutMs: 10_000 })
      const shell = JSON.stringify(rpc('shell', 2))
      for (const frame of frames(shell)) ws.socket.write(frame)
      const closed = await readUntilClose(ws.frames)
      expect(closed.code).toBe(1008)
      expect(env.tool.frames.some((f) => f.includes('shell'))).toBe(false)
      expect(await lastRecordAbout('WS /mcp/')).toMatchObject({
        event: 'call.denied',
        code: 'ERR_POLICY_DENIED',
        caller: { spiffeId: CLAUDE },
        reason: expect.stringContaining('"shell"'),
      })
      ws.socket.destroy()
    },
  )

  it.each([
    ['a batch hiding shell', JSON.stringify([rpc('search', 1), rpc('shell', 2)])],
    ['text that is not JSON', 'tools/call shell'],
  ])('on /mcp, %s closes the WebSocket with 1008', async (_what, text) => {
    const ws = await openAs(await env.agentToken(CLAUDE), '/mcp')
    ws.socket.write(encodeFrame(Buffer.from(text), { mask: true }))
    expect((await readUntilClose(ws.frames)).code).toBe(1008)
    expect(env.tool.frames).not.toContain(text)
    ws.socket.destroy()
  })

  it('an unmasked client frame is a protocol error: closed with 1002 and audited', async () => {
    const ws = await openAs(await env.agentToken(CLAUDE), '/ws')
    ws.socket.write(encodeFrame(Buffer.from('unmasked'), { mask: false }))
    expect((await readUntilClose(ws.frames)).code).toBe(1002)
    expect(await lastRecordAbout('WS /ws')).toMatchObject({
      event: 'call.denied',
      code: 'ERR_REQUEST_INVALID',
    })
    ws.socket.destroy()
  })
})

describe('credentials', () => {
  it('a WebSocket is closed (1008, audited) when its JWT-SVID expires; the deleted entry gets no new token', async () => {
    const ws = await openAs(await env.agentToken(SHORT), '/ws')
    ws.socket.write(encodeFrame(Buffer.from('hello'), { mask: true }))
    const closed = await readUntilClose(ws.frames)
    expect(closed.code).toBe(1008)
    expect(await lastRecordAbout('WS /ws')).toMatchObject({
      event: 'call.denied',
      code: 'ERR_JWT_EXPIRED',
      caller: { spiffeId: SHORT },
    })
    ws.socket.destroy()
    await env.stack.deleteEntry(shortEntry)
    const fetch = ['api', 'fetch', 'jwt', '--audience', 'tool.local', '--spiffe-id', SHORT]
    await waitFor(async () => (await env.stack.cli(fetch)).code !== 0, { timeoutMs: 15_000 })
  }, 60_000)

  it('the high-S twin of a valid JWT-SVID is refused (401 ERR_JWT_SIGNATURE_INVALID)', async () => {
    const token = await env.agentToken(CLAUDE)
    expect((await call({ headers: bearer(token) })).status).toBe(200)
    const twin = flipS('ES256', token)
    const answer = await call({ headers: bearer(twin) })
    expect(answer.status, answer.body).toBe(401)
    expect(JSON.parse(answer.body).error).toBe('ERR_JWT_SIGNATURE_INVALID')
  })
})
