import { generateKeyPair, type KeyObject } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MemoryGatewayAudit } from '../../common/guard/pino-guard-audit.js'
import { BundleSet } from '../../lib/core/bundle/bundle-source.js'
import { JwtBundle } from '../../lib/core/bundle/jwt-bundle.js'
import { ManualClock } from '../../lib/core/clock.js'
import { mintJwtSvid } from '../../lib/core/jwt/jwt-svid-mint.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import { TrustDomain } from '../../lib/core/trust-domain.js'
import { createGuard, type Guard } from '../../lib/guard/guard.js'
import { callerOf, guardRequests, guardUpgrades } from '../../lib/guard/http-middleware.js'
import { FailureThrottle } from '../../lib/guard/throttle.js'
import { openWebSocket, send } from '../helpers/gateway.js'
import { acceptKeyFor, encodeFrame } from '../helpers/ws-frames.js'

const TD = TrustDomain.parse('example.org')
const CALLER = 'spiffe://example.org/agents/claude'

let key: KeyObject
let server: Server
let port: number
let audit: MemoryGatewayAudit
let clock: ManualClock

function token(audience = 'my-tool'): Promise<string> {
  const privateKey = { kid: 'k1', privateKey: key }
  return mintJwtSvid({
    id: SpiffeId.parse(CALLER),
    audience: [audience],
    key: privateKey,
    nowMs: Date.now(),
    ttlMs: 60_000,
  })
}

/** A Node tool that embeds the guard: the README's example, as a test. */
function startTool(guard: Guard): Server {
  const tool = createServer(
    guardRequests(guard, (req, res) => {
      const caller = callerOf(req)
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({
          id: caller?.id.toString(),
          via: caller?.via,
          headers: req.headers,
          raw: req.rawHeaders,
        }),
      )
    }),
  )
  tool.on(
    'upgrade',
    guardUpgrades(guard, (req, socket) => {
      const accept = acceptKeyFor(String(req.headers['sec-websocket-key']))
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
      )
      socket.end(encodeFrame(Buffer.from(`hello ${callerOf(req)?.id}`), { mask: false }))
    }),
  )
  return tool
}

beforeAll(async () => {
  const pair = await promisify(generateKeyPair)('ec', { namedCurve: 'P-256' })
  key = pair.privateKey
  const bundles = BundleSet.of({ jwt: [JwtBundle.fromAuthorities(TD, [{ kid: 'k1', key: pair.publicKey }])] })
  audit = new MemoryGatewayAudit()
  clock = new ManualClock(Date.now())
  const guard = createGuard({
    jwtBundles: bundles,
    x509Bundles: bundles,
    audience: 'my-tool',
    allowedHosts: ['127.0.0.1'],
    throttle: new FailureThrottle({ maxFailures: 2, clock }),
    audit,
    clock,
  })
  server = startTool(guard).listen(0, '127.0.0.1')
  await once(server, 'listening')
  port = (server.address() as AddressInfo).port
})

afterAll(async () => {
  server?.closeAllConnections()
  await new Promise((resolve) => server?.close(resolve))
})

describe('the guard embedded in a Node http server', () => {
  it('allowed requests reach the handler with the verified caller; spoofed identity headers are gone', async () => {
    const headers = {
      authorization: `Bearer ${await token()}`,
      'x-tessera-spiffe-id': 'spiffe://example.org/admin',
      'X-Spiffe-Id': 'x',
    }
    const answer = await send(port, { headers })
    expect(answer.status, answer.body).toBe(200)
    const seen = JSON.parse(answer.body) as {
      id: string
      via: string
      headers: Record<string, string>
      raw: string[]
    }
    expect(seen).toMatchObject({ id: CALLER, via: 'jwt' })
    expect(seen.headers['x-tessera-spiffe-id']).toBe(CALLER)
    expect(seen.headers['x-spiffe-id']).toBeUndefined()
    const rawNames = seen.raw.filter((_h, i) => i % 2 === 0)
    expect(rawNames.filter((h) => /spiffe/i.test(h))).toEqual(['X-Tessera-Spiffe-Id'])
    expect(audit.events.at(-1)).toMatchObject({ outcome: 'allowed', spiffeId: CALLER })
  })

  it('refusals are JSON with the right status', async () => {
    const answer = await send(port)
    expect(answer.status).toBe(401)
    expect(answer.headers['content-type']).toBe('application/json')
    expect(JSON.parse(answer.body)).toEqual({ error: 'ERR_AUTH_MISSING', message: expect.any(String) })
  })

  it('upgrades: refused on the raw socket without a token, handed over with one', async () => {
    const refused = await openWebSocket(port)
    expect(refused.isOpen ? 101 : refused.status).toBe(401)
    const upgrade = await openWebSocket(port, { headers: { authorization: `Bearer ${await token()}` } })
    expect(upgrade.isOpen).toBe(true)
    if (upgrade.isOpen) expect((await upgrade.frames.next()).payload.toString()).toBe(`hello ${CALLER}`)
  })

  it('throttles a peer after repeated failures, with Retry-After', async () => {
    const bad = { authorization: `Bearer ${await token('someone-else')}` }
    for (let i = 0; i < 2; i++)
      expect((await send(port, { headers: bad, localAddress: '127.0.0.5' })).status).toBe(401)
    const answer = await send(port, {
      headers: { authorization: `Bearer ${await token()}` },
      localAddress: '127.0.0.5',
    })
    expect(answer.status).toBe(429)
    expect(answer.headers['retry-after']).toBe('1')
    clock.advance(1_000)
    expect(
      (await send(port, { headers: { authorization: `Bearer ${await token()}` }, localAddress: '127.0.0.5' }))
        .status,
    ).toBe(200)
  })
})
