import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { connect as connectTls, type TLSSocket } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseX509SvidPem } from '../../lib/core/x509/x509-svid.js'
import { type GatewayProcess, openWebSocket, send } from '../helpers/gateway.js'
import {
  type AuditFile,
  bearer,
  CLAUDE,
  type GatewayStack,
  INTRUDER,
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
    expect(records.filter((r) => r['action'] === 'WS' && r['path'] === '/ws').at(-1)).toMatchObject({
      event: 'call.denied',
      code: 'ERR_X509_SVID_EXPIRED',
      caller: { spiffeId: 'spiffe://partner.org/agents/brief' },
    })
    upgrade.socket.destroy()
  }, 60_000)
})

/** The URI SAN of the certificate a TLS server at `port` presents (its chain checked against `ca`). */
async function presentedId(port: number, ca: Buffer): Promise<string | undefined> {
  const socket: TLSSocket = connectTls({ host: '127.0.0.1', port, ca, checkServerIdentity: () => undefined })
  await once(socket, 'secureConnect')
  const san = socket.getPeerCertificate().subjectaltname ?? ''
  socket.destroy()
  return /URI:(spiffe:\/\/[^,\s]+)/.exec(san)?.[1]
}

describe('--spiffe-id: which of its SVIDs the gateway presents', () => {
  it.each([[CLAUDE], [INTRUDER]])('presents %s when asked, whichever comes first', async (id) => {
    const { gateway } = await env.startGateway(['--tls', '--spiffe-id', id], `tls-${id.split('/').pop()}.log`)
    const written = await env.stack.cli(['api', 'fetch', 'x509', '--write', join(env.stack.dir, 'ca-only')])
    expect(written.code, written.stderr).toBe(0)
    const ca = await readFile(join(env.stack.dir, 'ca-only', 'bundle.pem'))
    expect(await presentedId(gateway.port, ca)).toBe(id)
  })

  it('refuses to start with ERR_NO_IDENTITY when the workload has no SVID with that ID', async () => {
    const result = await env.stack.cli([
      ...['gateway', '--tls', '--spiffe-id', `spiffe://${TD}/tools/nobody`, '--listen', '127.0.0.1:0'],
      ...['--upstream', `unix://${env.tool.socketPath}`, '--audience', 'tool.local'],
    ])
    expect(result.code).not.toBe(0)
    // Its log lines (a warning about running without a policy) come first; the failure is the last line.
    expect(result.stderr.trimEnd().split('\n').pop()).toMatch(/^error ERR_NO_IDENTITY: /)
  })

  it('is refused without --tls (only a TLS gateway presents an SVID)', async () => {
    const result = await env.stack.cli([
      ...['gateway', '--spiffe-id', CLAUDE, '--listen', '127.0.0.1:0'],
      ...['--upstream', `unix://${env.tool.socketPath}`, '--audience', 'tool.local'],
    ])
    expect(result.code).not.toBe(0)
    expect(result.stderr).toMatch(/^error ERR_CONFIG_INVALID: .*spiffeId/)
  })
})
