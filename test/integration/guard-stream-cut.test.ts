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
import { createGuard } from '../../lib/guard/guard.js'
import { guardRequests } from '../../lib/guard/http-middleware.js'
import { TestRevocations } from '../helpers/guard-fixture.js'
import { openStream } from '../helpers/open-stream.js'
import { waitFor } from '../helpers/processes.js'

/**
 * lib's guard middleware in a real Node http server: a reply still open when the credential it was
 * admitted with is revoked or expires is cut (an event stream ended cleanly, any other reply
 * destroyed, one without headers yet answered 401) and the cut audited.
 */

const TD = TrustDomain.parse('example.org')
const CALLER = 'spiffe://example.org/agents/claude'

let key: KeyObject
let server: Server
let port: number
let audit: MemoryGatewayAudit
let clock: ManualClock
let revocations: TestRevocations
const openReplies = new Set<string>()
/** Every path a handler was run for. */
const handled: string[] = []

async function token(ttlMs = 60_000): Promise<{ token: string; jti: string }> {
  const minted = await mintJwtSvid({
    id: SpiffeId.parse(CALLER),
    audience: ['my-tool'],
    key: { kid: 'k1', privateKey: key },
    nowMs: clock.nowMs(),
    ttlMs,
  })
  const claims = JSON.parse(Buffer.from(minted.split('.')[1] ?? '', 'base64url').toString('utf8'))
  return { token: minted, jti: String(claims.jti) }
}

/** A tool whose replies stay open: an event stream, a chunked text reply, and one that never answers. */
function startTool(): Server {
  const guard = createGuard({
    jwtBundles: bundles,
    x509Bundles: bundles,
    audience: 'my-tool',
    allowedHosts: ['127.0.0.1'],
    throttle: null,
    audit,
    clock,
    revocations,
  })
  return createServer(
    guardRequests(guard, (req, res) => {
      const url = req.url ?? ''
      handled.push(url)
      openReplies.add(url)
      res.once('close', () => openReplies.delete(url))
      if (url === '/events') {
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        res.write('data: one\n\n')
      } else if (url === '/chunked') {
        res.writeHead(200, { 'content-type': 'text/plain' })
        res.write('part of a body')
      }
    }),
  )
}

let bundles: BundleSet

beforeAll(async () => {
  const pair = await promisify(generateKeyPair)('ec', { namedCurve: 'P-256' })
  key = pair.privateKey
  bundles = BundleSet.of({ jwt: [JwtBundle.fromAuthorities(TD, [{ kid: 'k1', key: pair.publicKey }])] })
  audit = new MemoryGatewayAudit()
  clock = new ManualClock(Date.now())
  revocations = new TestRevocations()
  server = startTool().listen(0, '127.0.0.1')
  await once(server, 'listening')
  port = (server.address() as AddressInfo).port
})

afterAll(async () => {
  server?.closeAllConnections()
  await new Promise((resolve) => server?.close(resolve))
})

const open = (path: string, bearer: string) =>
  openStream(port, { path, headers: { authorization: `Bearer ${bearer}` } })

const lastDecision = () => audit.events.at(-1)

describe('a reply the guard middleware let through', () => {
  it('an event stream ends cleanly after its events when the JWT-SVID is revoked; the cut is audited', async () => {
    const { token: bearer, jti } = await token()
    const reply = await open('/events', bearer)
    expect(reply.status).toBe(200)
    await waitFor(() => reply.text() === 'data: one\n\n', { timeoutMs: 5_000 })
    revocations.revoke('jwt-id', jti)
    expect(await reply.ended).toBe('end')
    expect(reply.text()).toBe('data: one\n\n')
    await waitFor(() => !openReplies.has('/events'), { timeoutMs: 5_000 })
    expect(lastDecision()).toMatchObject({
      outcome: 'denied',
      method: 'GET',
      path: '/events',
      spiffeId: CALLER,
      code: 'ERR_CREDENTIAL_REVOKED',
    })
    expect(revocations.listeners).toBe(0)
  })

  it('a chunked reply that is not an event stream is destroyed, so it never looks complete', async () => {
    const { token: bearer, jti } = await token()
    const reply = await open('/chunked', bearer)
    await waitFor(() => reply.text().length > 0, { timeoutMs: 5_000 })
    revocations.revoke('jwt-id', jti)
    expect(await reply.ended).toBe('cut')
    expect(lastDecision()).toMatchObject({ path: '/chunked', code: 'ERR_CREDENTIAL_REVOKED' })
  })

  it('a request not answered yet is answered 401 with the code', async () => {
    const { token: bearer, jti } = await token()
    const answering = open('/never', bearer)
    await waitFor(() => openReplies.has('/never'), { timeoutMs: 5_000 })
    revocations.revoke('jwt-id', jti)
    const reply = await answering
    expect(reply.status).toBe(401)
    await reply.ended
    expect(JSON.parse(reply.text())).toEqual({ error: 'ERR_CREDENTIAL_REVOKED', message: expect.any(String) })
  })

  it('an event stream ends when its JWT-SVID expires by the guard clock', async () => {
    const { token: bearer } = await token(1_000)
    const reply = await open('/events', bearer)
    expect(reply.status).toBe(200)
    // The timer set for the token's exp reads the injected clock when it fires: past exp by then.
    clock.advance(2_000)
    expect(await reply.ended).toBe('end')
    expect(lastDecision()).toMatchObject({ path: '/events', code: 'ERR_JWT_EXPIRED' })
  })

  it('a token admitted within the leeway but already past its expiry is answered 401, and the handler never runs', async () => {
    const { token: bearer } = await token(1_000)
    clock.advance(5_000) // past exp, within the 30 s leeway: the guard admits it, the watch cuts at once
    const reply = await open('/events?late', bearer)
    expect(reply.status).toBe(401)
    await reply.ended
    expect(JSON.parse(reply.text())).toMatchObject({ error: 'ERR_JWT_EXPIRED' })
    expect(handled).not.toContain('/events?late')
  })

  it('a reply whose client went away leaves no watch behind and nothing to cut', async () => {
    const before = audit.events.length
    const { token: bearer } = await token()
    const answering = open('/gone', bearer)
    await waitFor(() => openReplies.has('/gone'), { timeoutMs: 5_000 })
    server.closeAllConnections()
    await answering.catch(() => undefined)
    await waitFor(() => revocations.listeners === 0, { timeoutMs: 5_000 })
    expect(audit.events.slice(before).map((e) => e.outcome)).toEqual(['allowed'])
  })
})
