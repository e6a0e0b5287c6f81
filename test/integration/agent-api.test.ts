import { createPublicKey } from 'node:crypto'
import { status } from '@grpc/grpc-js'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { fingerprintToken } from '../../common/log/audit-log.js'
import { validateJwtSvid } from '../../lib/core/jwt/jwt-svid-validate.js'
import { validateWitSvid } from '../../lib/core/wit/wit-svid.js'
import { parseCertificate } from '../../lib/core/x509/certificate.js'
import { createCsr } from '../../lib/core/x509/csr.js'
import { generateP256PrivateKey } from '../../lib/core/x509/generate-key.js'
import { verifyX509Svid } from '../../lib/core/x509/verify-chain.js'
import { joinTokenId } from '../../server/agents/agent-id.js'
import { AgentApiFixture, rawCall } from '../helpers/agent-api-fixture.js'
import { expectRefused, SyncRecorder } from '../helpers/sync-recorder.js'

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

const td = () => fx.trustDomain.name

describe('AttestAgent', () => {
  it('accepts a join token once; the replay is refused with PERMISSION_DENIED and audited', async () => {
    const { token, agentId } = await fx.admin.createJoinToken()
    const first = await fx.client({ insecureBootstrap: true }).attest(token)
    expect(first.svid.id.toString()).toBe(agentId)
    await expectRefused(fx.client().attest(token), status.PERMISSION_DENIED, 'ERR_JOIN_TOKEN_INVALID')
    const used = (await fx.server.auditRecords()).filter(
      (r) => r['event'] === 'token.used' && r['resource'] === fingerprintToken(token),
    )
    expect(used.map((r) => r['outcome'])).toEqual(['allowed', 'denied'])
    expect(used[1]?.['code']).toBe('ERR_JOIN_TOKEN_INVALID')
  })

  it('names the agent spiffe://<td>/tessera/agent/join_token/<token-id>', async () => {
    const agent = await fx.attest()
    expect(agent.svid.id.toString()).toBe(
      `spiffe://${td()}/tessera/agent/join_token/${joinTokenId(agent.token)}`,
    )
    expect(agent.bundle.trustDomain.name).toBe(td())
    const bundles = { getX509BundleForTrustDomain: () => agent.bundle.toX509Bundle() }
    expect(verifyX509Svid(agent.svid.certificates, bundles, Date.now()).id.equals(agent.svid.id)).toBe(true)
  })

  it('checks the CSR before it consumes the token', async () => {
    await fx.attest()
    const { token } = await fx.admin.createJoinToken()
    const raw = fx.rawClient()
    const junk = rawCall((cb) => raw.AttestAgent({ join_token: token, csr: Buffer.from('not a CSR') }, cb))
    await expectRefused(junk, status.INVALID_ARGUMENT, 'ERR_CSR_MALFORMED')
    await expectRefused(
      rawCall((cb) => raw.AttestAgent({ join_token: token }, cb)),
      status.INVALID_ARGUMENT,
      'ERR_REQUEST_INVALID',
    )
    await expect(fx.client().attest(token)).resolves.toBeDefined()
  })
})

describe('RenewAgent', () => {
  it('gives a new serial; the old SVID is refused from then on', async () => {
    const agent = await fx.attest()
    const renewed = await agent.client.renew()
    expect(renewed.id.equals(agent.svid.id)).toBe(true)
    expect(renewed.certificates[0]?.serialHex).not.toBe(agent.svid.certificates[0]?.serialHex)
    await expect(agent.client.batchNewX509Svid([])).resolves.toEqual([])
    const stale = fx.client()
    stale.useIdentity(agent.svid, agent.bundle)
    await expectRefused(stale.batchNewX509Svid([]), status.PERMISSION_DENIED, 'ERR_AGENT_UNAUTHORIZED')
    const denied = (await fx.server.auditRecords()).filter((r) => r['event'] === 'call.denied')
    expect(denied.some((r) => (r['caller'] as { spiffeId?: string }).spiffeId === agent.agentId)).toBe(true)
  })
})

describe('SyncAuthorized', () => {
  // How soon a change arrives is measured by `npm run bench` (entry → stream); tests never time.
  it('sends a snapshot at once and a new one on every entry create and delete', async () => {
    const agent = await fx.attest()
    const web = await fx.entry(agent.agentId, '/sync/web')
    const sync = new SyncRecorder(agent.client)
    const first = await sync.next((s) => s.entries.some((e) => e.id === web.id))
    expect(first.snapshot.bundles[0]?.trustDomain.name).toBe(td())

    const db = await fx.entry(agent.agentId, '/sync/db')
    await sync.next((s) => s.entries.some((e) => e.id === db.id), 1)

    await fx.admin.deleteEntry(db.id)
    const deleted = await sync.next((s) => !s.entries.some((e) => e.id === db.id), 2)
    expect(deleted.snapshot.entries.map((e) => e.id)).toEqual([web.id])
    sync.stream.stop()
  })

  it('serves the entries below an alias', async () => {
    const alias = `spiffe://${td()}/tessera/agent/alias-${Date.now()}`
    const agent = await fx.attest({ aliasId: alias })
    const below = await fx.entry(alias, '/alias/child')
    const sync = new SyncRecorder(agent.client)
    const { snapshot } = await sync.next((s) => s.entries.some((e) => e.id === below.id))
    expect(snapshot.entries.map((e) => e.spiffeId.toString())).toContain(alias)
    sync.stream.stop()
  })
})

describe('BatchNewX509Svid and NewJwtSvid', () => {
  it('signs for authorized entries and refuses (and audits) another agent’s workload entry', async () => {
    const [a, b] = [await fx.attest(), await fx.attest()]
    const mine = await fx.entry(a.agentId, '/batch/mine', { dnsNames: ['web.example.org'], x509Ttl: 600 })
    const theirs = await fx.entry(b.agentId, '/batch/theirs')
    const key = await generateP256PrivateKey()
    const csrDer = createCsr(key)
    const askedAtMs = Date.now()
    const [ok, refused] = await a.client.batchNewX509Svid([
      { entryId: mine.id, csrDer },
      { entryId: theirs.id, csrDer },
    ])
    const answeredAtMs = Date.now()
    if (!ok?.ok) throw new Error(`signing failed: ${JSON.stringify(ok)}`)
    const leaf = parseCertificate(ok.chainDer[0] ?? Buffer.alloc(0))
    expect(leaf.uriSans).toEqual([mine.spiffeId])
    expect(leaf.dnsSans).toEqual(['web.example.org'])
    // 600 s from when it was signed, which is between the request and the answer (certificate
    // times have whole seconds); a bracket, not a bound on how long the call took.
    expect(leaf.notAfterMs).toBeGreaterThanOrEqual(Math.floor(askedAtMs / 1000) * 1000 + 600_000)
    expect(leaf.notAfterMs).toBeLessThanOrEqual(answeredAtMs + 600_000)
    expect(refused).toMatchObject({
      ok: false,
      grpcCode: status.PERMISSION_DENIED,
      errorCode: 'ERR_AGENT_UNAUTHORIZED',
    })
    const audit = await fx.server.auditRecords()
    const denial = audit.find((r) => r['event'] === 'svid.denied' && r['resource'] === theirs.spiffeId)
    expect((denial?.['caller'] as { spiffeId?: string } | undefined)?.spiffeId).toBe(a.agentId)
    expect(audit.some((r) => r['event'] === 'svid.issued' && r['resource'] === mine.spiffeId)).toBe(true)
  })

  it('mints JWT-SVIDs for authorized entries only', async () => {
    const [a, b] = [await fx.attest(), await fx.attest()]
    const mine = await fx.entry(a.agentId, '/jwt/mine', { jwtTtl: 120 })
    const theirs = await fx.entry(b.agentId, '/jwt/theirs')
    const jwt = await a.client.newJwtSvid(mine.id, ['aud-1', 'aud-2'])
    expect(jwt.spiffeId).toBe(mine.spiffeId)
    expect(jwt.expiresAtMs - jwt.issuedAtMs).toBe(120_000)
    const bundles = { getJwtBundleForTrustDomain: () => a.bundle.toJwtBundle() }
    const svid = await validateJwtSvid(jwt.token, bundles, 'aud-2', { nowMs: Date.now() })
    expect(svid.audience).toEqual(['aud-1', 'aud-2'])
    await expectRefused(
      a.client.newJwtSvid(theirs.id, ['x']),
      status.PERMISSION_DENIED,
      'ERR_AGENT_UNAUTHORIZED',
    )
    await expectRefused(a.client.newJwtSvid(mine.id, []), status.INVALID_ARGUMENT, 'ERR_REQUEST_INVALID')
  })

  it('mints WIT-SVIDs binding the public key the agent sent, for authorized entries only', async () => {
    const [a, b] = [await fx.attest(), await fx.attest()]
    const mine = await fx.entry(a.agentId, '/wit/mine', { jwtTtl: 120 })
    const theirs = await fx.entry(b.agentId, '/wit/theirs')
    const workloadKey = await generateP256PrivateKey()
    const spki = createPublicKey(workloadKey).export({ type: 'spki', format: 'der' })
    const wit = await a.client.newWitSvid(mine.id, spki)
    expect(wit.expiresAtMs - wit.issuedAtMs).toBe(120_000)
    expect(a.bundle.witAuthorities.length).toBeGreaterThan(0)
    const bundles = { getWitBundleForTrustDomain: () => a.bundle.toWitBundle() }
    const svid = await validateWitSvid(wit.token, bundles, { nowMs: Date.now() })
    expect(svid.id.toString()).toBe(mine.spiffeId)
    expect(svid.confirmationKey.equals(createPublicKey(workloadKey))).toBe(true)
    await expectRefused(
      a.client.newWitSvid(theirs.id, spki),
      status.PERMISSION_DENIED,
      'ERR_AGENT_UNAUTHORIZED',
    )
    for (const bad of [Buffer.alloc(0), Buffer.from('not a key'), Buffer.alloc(4096, 1)])
      await expectRefused(a.client.newWitSvid(mine.id, bad), status.INVALID_ARGUMENT, 'ERR_KEY_MALFORMED')
    const audit = await fx.server.auditRecords()
    expect(audit.some((r) => r['event'] === 'svid.issued' && r['resource'] === mine.spiffeId)).toBe(true)
  })
})
