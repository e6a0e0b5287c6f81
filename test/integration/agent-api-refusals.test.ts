import { once } from 'node:events'
import { connect } from 'node:net'
import { status } from '@grpc/grpc-js'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { splitAddress } from '../../agent/server-client/tls.js'
import { createCsr } from '../../lib/core/x509/csr.js'
import { generateP256PrivateKey } from '../../lib/core/x509/generate-key.js'
import { exportPkcs8Der } from '../../lib/core/x509/private-key.js'
import { parseX509Svid } from '../../lib/core/x509/x509-svid.js'
import { AgentApiFixture, rawCall } from '../helpers/agent-api-fixture.js'
import { expectRefused, SyncRecorder } from '../helpers/sync-recorder.js'
import { TestCa } from '../helpers/test-ca.js'

let fx: AgentApiFixture

beforeAll(async () => {
  fx = await AgentApiFixture.start()
})
afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') console.error(`--- server output ---\n${fx.server.output()}`)
})
afterAll(async () => {
  await fx?.cleanup()
})

describe('evicted and banned agents', () => {
  it('evict: the open stream ends with PERMISSION_DENIED at once and every call fails', async () => {
    const agent = await fx.attest()
    const sync = new SyncRecorder(agent.client)
    await sync.next(() => true)
    await fx.admin.evictAgent(agent.agentId)
    const refusal = await sync.refused()
    expect(refusal.code).toBe(status.PERMISSION_DENIED)
    await expectRefused(agent.client.batchNewX509Svid([]), status.PERMISSION_DENIED, 'ERR_AGENT_UNAUTHORIZED')
    await expectRefused(agent.client.renew(), status.PERMISSION_DENIED, 'ERR_AGENT_UNAUTHORIZED')
  })

  it('ban: the stream ends at once, and the banned agent cannot renew', async () => {
    const agent = await fx.attest()
    const sync = new SyncRecorder(agent.client)
    await sync.next(() => true)
    await fx.admin.banAgent(agent.agentId)
    expect((await sync.refused()).code).toBe(status.PERMISSION_DENIED)
    await expectRefused(agent.client.renew(), status.PERMISSION_DENIED, 'ERR_AGENT_BANNED')
    const denied = (await fx.server.auditRecords()).filter(
      (r) =>
        r['event'] === 'call.denied' && (r['caller'] as { spiffeId?: string }).spiffeId === agent.agentId,
    )
    expect(denied.map((r) => r['code'])).toContain('ERR_AGENT_BANNED')
  })
})

describe('untrusted callers', () => {
  it('survives junk bytes on the TCP port', async () => {
    await fx.attest()
    const { host, port } = splitAddress(fx.server.agentAddress)
    for (const junk of [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), Buffer.alloc(4096, 0x16)]) {
      const socket = connect({ host, port })
      await once(socket, 'connect')
      socket.on('error', () => undefined)
      socket.end(junk)
      await once(socket, 'close')
    }
    expect(fx.server.isRunning()).toBe(true)
    await expect(fx.attest()).resolves.toBeDefined()
  })

  it('refuses RenewAgent from a TLS client without a certificate', async () => {
    await fx.attest()
    const raw = fx.rawClient()
    const csr = createCsr(await generateP256PrivateKey())
    await expectRefused(
      rawCall((cb) => raw.RenewAgent({ csr }, cb)),
      status.PERMISSION_DENIED,
      'ERR_PEER_UNAUTHORIZED',
    )
    await expectRefused(
      rawCall((cb) => raw.NewJwtSvid({ entry_id: 'x', audience: ['a'] }, cb)),
      status.PERMISSION_DENIED,
    )
    expect(fx.server.isRunning()).toBe(true)
  })

  it('refuses an agent SVID from another CA of the same trust domain, and audits it', async () => {
    const agent = await fx.attest()
    const rogue = await TestCa.create(fx.trustDomain.name)
    const forged = await rogue.issue(agent.agentId)
    const raw = fx.rawClient({ certPem: forged.certPem, keyPem: forged.keyPem })
    const csr = createCsr(await generateP256PrivateKey())
    await expectRefused(
      rawCall((cb) => raw.RenewAgent({ csr }, cb)),
      status.PERMISSION_DENIED,
      'ERR_PEER_UNAUTHORIZED',
    )
    const client = fx.client()
    client.useIdentity(forged.svid, agent.bundle)
    await expectRefused(client.batchNewX509Svid([]), status.PERMISSION_DENIED, 'ERR_PEER_UNAUTHORIZED')
    // The TLS layer already finds no path to the bundle, so grpc-js shows the handler no certificate.
    const denied = (await fx.server.auditRecords()).filter(
      (r) => r['event'] === 'call.denied' && r['resource'] === 'BatchNewX509Svid',
    )
    expect(denied.map((r) => r['code'])).toContain('ERR_PEER_UNAUTHORIZED')
    // The real agent is unaffected.
    await expect(agent.client.batchNewX509Svid([])).resolves.toEqual([])
  })
  it('refuses a workload SVID of the trust domain as the client certificate', async () => {
    const agent = await fx.attest()
    const entry = await fx.entry(agent.agentId, '/refusals/workload')
    const key = await generateP256PrivateKey()
    const [signed] = await agent.client.batchNewX509Svid([{ entryId: entry.id, csrDer: createCsr(key) }])
    if (!signed?.ok) throw new Error('signing failed')
    const workload = parseX509Svid(Buffer.concat(signed.chainDer), exportPkcs8Der(key))
    const client = fx.client()
    client.useIdentity(workload, agent.bundle)
    await expectRefused(client.newJwtSvid(entry.id, ['a']), status.PERMISSION_DENIED, 'ERR_PEER_UNAUTHORIZED')
    const denied = (await fx.server.auditRecords()).filter(
      (r) => r['event'] === 'call.denied' && r['resource'] === 'NewJwtSvid',
    )
    expect(denied.map((r) => (r['caller'] as { spiffeId?: string }).spiffeId)).toContain(entry.spiffeId)
  })
})

describe('bad requests', () => {
  it('refuses an oversized batch and an oversized message with RESOURCE_EXHAUSTED', async () => {
    const agent = await fx.attest()
    const csrDer = createCsr(await generateP256PrivateKey())
    const tooMany = Array.from({ length: 501 }, () => ({ entryId: 'x', csrDer }))
    await expectRefused(
      agent.client.batchNewX509Svid(tooMany),
      status.RESOURCE_EXHAUSTED,
      'ERR_REQUEST_TOO_LARGE',
    )
    const huge = [{ entryId: 'x', csrDer: Buffer.alloc(5 * 1024 * 1024, 1) }]
    await expectRefused(agent.client.batchNewX509Svid(huge), status.RESOURCE_EXHAUSTED)
    expect(fx.server.isRunning()).toBe(true)
  })

  it('fails a malformed CSR item alone', async () => {
    const agent = await fx.attest()
    const entry = await fx.entry(agent.agentId, '/bad/csr')
    const csrDer = createCsr(await generateP256PrivateKey())
    const results = await agent.client.batchNewX509Svid([
      { entryId: entry.id, csrDer: Buffer.from('junk') },
      { entryId: entry.id, csrDer },
    ])
    expect(results[0]).toMatchObject({
      ok: false,
      grpcCode: status.INVALID_ARGUMENT,
      errorCode: 'ERR_CSR_MALFORMED',
    })
    expect(results[1]?.ok).toBe(true)
  })
})
