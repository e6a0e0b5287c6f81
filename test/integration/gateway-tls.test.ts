import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseX509SvidPem } from '../../lib/core/x509/x509-svid.js'
import { type GatewayProcess, openWebSocket, send } from '../helpers/gateway.js'
import {
  type AuditFile,
  bearer,
  CLAUDE,
  type GatewayStack,
  startGatewayStack,
  TD,
} from '../helpers/gateway-stack.js'
import { TestCa } from '../helpers/test-ca.js'
import { encodeFrame, readUntilClose } from '../helpers/ws-frames.js'

/**
 * `tessera gateway --tls`: HTTPS with the gateway's own X509-SVID from the agent; callers present an
 * X509-SVID (mTLS) or, without a client certificate, a bearer JWT-SVID.
 */

let env: GatewayStack

beforeAll(async () => {
  env = await startGatewayStack()
})

afterAll(async () => {
  await env?.stop()
})

describe('mTLS (--tls)', () => {
  let tlsGateway: GatewayProcess
  let tlsAudit: AuditFile
  let svidDir: string
  let tls: (extra?: Record<string, unknown>) => Record<string, unknown>

  beforeAll(async () => {
    ;({ gateway: tlsGateway, audit: tlsAudit } = await env.startGateway(['--tls'], 'tls-audit.log'))
    svidDir = join(env.stack.dir, 'client-svid')
    const written = await env.stack.cli(['api', 'fetch', 'x509', '--write', svidDir])
    expect(written.code, written.stderr).toBe(0)
    const ca = await readFile(join(svidDir, 'bundle.pem'))
    // SVIDs name workloads by SPIFFE ID, not DNS: the client checks the chain, not a host name.
    tls = (extra = {}) => ({ ca, checkServerIdentity: () => undefined, ...extra })
  })

  it('a client X509-SVID from the agent authenticates; the tool sees its ID', async () => {
    const [cert, key] = await Promise.all([
      readFile(join(svidDir, 'svid.pem')),
      readFile(join(svidDir, 'svid.key')),
    ])
    const id = parseX509SvidPem(cert, key).id.toString()
    const answer = await send(tlsGateway.port, { tls: tls({ cert, key }) })
    expect(answer.status, answer.body).toBe(200)
    expect(JSON.parse(answer.body)).toMatchObject({
      spiffeId: id,
      headers: { 'x-tessera-auth-method': 'mtls', 'x-forwarded-proto': 'https' },
    })
  })

  it('a federated partner X509-SVID authenticates; one of a rogue CA is refused', async () => {
    const partner = await env.partnerCa.issue('spiffe://partner.org/agents/p')
    const ok = await send(tlsGateway.port, { tls: tls({ cert: partner.certPem, key: partner.keyPem }) })
    expect(JSON.parse(ok.body).spiffeId).toBe('spiffe://partner.org/agents/p')
    const rogue = await (await TestCa.create(TD)).issue(CLAUDE)
    const refused = await send(tlsGateway.port, { tls: tls({ cert: rogue.certPem, key: rogue.keyPem }) })
    expect(refused.status).toBe(401)
    expect(JSON.parse(refused.body).error).toBe('ERR_X509_SVID_UNTRUSTED')
  })

  it('over TLS, a bearer JWT-SVID works without a client certificate, and nothing works without either', async () => {
    const answer = await send(tlsGateway.port, { tls: tls(), headers: bearer(await env.agentToken(CLAUDE)) })
    expect(JSON.parse(answer.body)).toMatchObject({
      spiffeId: CLAUDE,
      headers: { 'x-tessera-auth-method': 'jwt' },
    })
    expect((await send(tlsGateway.port, { tls: tls() })).status).toBe(401)
  })

  it('a WebSocket over TLS with a client certificate echoes', async () => {
    const partner = await env.partnerCa.issue('spiffe://partner.org/agents/ws')
    const upgrade = await openWebSocket(tlsGateway.port, {
      tls: tls({ cert: partner.certPem, key: partner.keyPem }),
    })
    expect(upgrade.isOpen).toBe(true)
    if (!upgrade.isOpen) return
    upgrade.socket.write(encodeFrame(Buffer.from('over tls'), { mask: true }))
    expect((await upgrade.frames.next()).payload.toString()).toBe('spiffe://partner.org/agents/ws|over tls')
    upgrade.socket.destroy()
  })

  it('a WebSocket over mTLS is closed (1008, audited) when the client certificate expires', async () => {
    // Valid for about ten more seconds: the WebSocket must not outlive it.
    const now = Date.now()
    const brief = await env.partnerCa.issue('spiffe://partner.org/agents/brief', {
      nowMs: now - 60_000,
      ttlMs: 70_000,
    })
    const upgrade = await openWebSocket(tlsGateway.port, {
      tls: tls({ cert: brief.certPem, key: brief.keyPem }),
    })
    expect(upgrade.isOpen).toBe(true)
    if (!upgrade.isOpen) return
    expect((await readUntilClose(upgrade.frames)).code).toBe(1008)
    const records = await tlsAudit.records()
    expect(records.filter((r) => r['subject'] === 'WS /ws').at(-1)).toMatchObject({
      event: 'call.denied',
      code: 'ERR_X509_SVID_EXPIRED',
      caller: { spiffeId: 'spiffe://partner.org/agents/brief' },
    })
    upgrade.socket.destroy()
  }, 60_000)
})
