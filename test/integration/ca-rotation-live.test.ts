import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ServerClient } from '../../agent/server-client/server-client.js'
import { MemoryAuditLog } from '../../common/log/audit-log.js'
import { X509Bundle } from '../../lib/core/bundle/x509-bundle.js'
import { ManualClock } from '../../lib/core/clock.js'
import { decodeJwtSvid } from '../../lib/core/jwt/jwt-svid.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import { type Certificate, parseCertificate } from '../../lib/core/x509/certificate.js'
import { createCsr } from '../../lib/core/x509/csr.js'
import { generateP256PrivateKey } from '../../lib/core/x509/generate-key.js'
import { verifyX509Svid } from '../../lib/core/x509/verify-chain.js'
import { agentIdForJoinToken } from '../../server/agents/agent-id.js'
import { type RunningServer, startServer } from '../../server/server-app.js'
import { loadServerConfig } from '../../server/server-config.js'
import { makeTempDir, removeDir } from '../helpers/processes.js'
import { SILENT_LOG, SyncRecorder, TEST_BACKOFF } from '../helpers/sync-recorder.js'
import { testEntryFields } from '../helpers/temp-datastore.js'

const HOUR = 3_600_000
const CA_TTL_MS = 6 * HOUR
/**
 * The manual clock starts 0.9 × CA TTL in the past: every step (½, ⅚) then stays behind the real
 * clock, so the certificates issued along the way are valid for OpenSSL's real-time checks too.
 */
const START_MS = Math.floor((Date.now() - 0.9 * CA_TTL_MS) / 1000) * 1000

let dir: string
let server: RunningServer
let client: ServerClient
let sync: SyncRecorder
let entryId: string
const clock = new ManualClock(START_MS)

function hasAuthority(bundle: X509Bundle | undefined, ca: Certificate): boolean {
  return bundle?.authorities.some((c) => c.der.equals(ca.der)) ?? false
}

async function advanceTo(fraction: number): Promise<void> {
  clock.set(START_MS + Math.ceil(fraction * CA_TTL_MS) + 1000)
  await server.context.rotator.rotate()
}

async function signOne(): Promise<Certificate> {
  const [result] = await client.batchNewX509Svid([
    { entryId, csrDer: createCsr(await generateP256PrivateKey()) },
  ])
  if (!result?.ok) throw new Error(`signing failed: ${JSON.stringify(result)}`)
  return parseCertificate(result.chainDer[0] ?? Buffer.alloc(0))
}

beforeAll(async () => {
  dir = await makeTempDir('tessera-rotation-')
  const config = loadServerConfig({
    flags: {
      dataDir: join(dir, 'server'),
      bindPort: '0',
      trustDomain: 'example.org',
      caTtl: '6h',
      agentSvidTtl: '5h42m',
    },
    env: {},
    cwd: dir,
  })
  server = await startServer(config, { log: SILENT_LOG, audit: new MemoryAuditLog(clock), clock })
  const { context } = server
  const token = `rotation-${START_MS}`
  await context.datastore.joinTokens.create({ token, expiresAtMs: START_MS + HOUR })
  const agentId = agentIdForJoinToken(context.trustDomain, token)
  const entry = await context.datastore.entries.create(
    testEntryFields({ spiffeId: SpiffeId.parse('spiffe://example.org/rotation/web'), parentId: agentId }),
  )
  context.events.emit('entries-changed')
  entryId = entry.id
  client = new ServerClient({
    address: `127.0.0.1:${server.agentApiPort}`,
    trustDomain: context.trustDomain,
    trustBundlePem: context.bundles.own().toX509Bundle().marshalPem(),
    log: SILENT_LOG,
    clock,
    backoff: TEST_BACKOFF,
  })
  await client.attest(token)
  sync = new SyncRecorder(client)
})

afterAll(async () => {
  client?.close()
  await server?.stop()
  await removeDir(dir)
})

describe('CA rotation on a running server', () => {
  it('publishes the prepared CA at ½, signs with it from ⅚, and keeps the old CA until it expires', async () => {
    const first = await sync.next((s) => s.entries.some((e) => e.id === entryId))
    const oldCa = server.context.rotator.active().x509Ca.certificate
    expect(first.snapshot.bundles[0]?.x509Authorities).toHaveLength(1)

    await advanceTo(1 / 2)
    const prepared = server.context.rotator.slots.prepared?.x509Ca.certificate
    if (!prepared) throw new Error('no CA was prepared at ½ of the lifetime')
    const half = await sync.next(
      (s) => hasAuthority(s.bundles[0]?.toX509Bundle(), prepared),
      sync.snapshots.length - 1,
    )
    expect(hasAuthority(half.snapshot.bundles[0]?.toX509Bundle(), oldCa)).toBe(true)
    expect(half.snapshot.bundles[0]?.jwtAuthorities).toHaveLength(2)
    expect((await signOne()).issuerDer.equals(oldCa.subjectDer)).toBe(true)

    await advanceTo(5 / 6)
    expect(server.context.rotator.active().x509Ca.certificate.der.equals(prepared.der)).toBe(true)
    const leaf = await signOne()
    const onlyNew = X509Bundle.fromAuthorities(server.context.trustDomain, [prepared])
    const source = { getX509BundleForTrustDomain: () => onlyNew }
    expect(verifyX509Svid([leaf], source, clock.nowMs()).id.toString()).toBe(
      'spiffe://example.org/rotation/web',
    )
    const jwt = await client.newJwtSvid(entryId, ['rotation'])
    expect(decodeJwtSvid(jwt.token).header.kid).toBe(server.context.rotator.active().jwtKey.kid)
    expect(hasAuthority(server.context.bundles.own().toX509Bundle(), oldCa)).toBe(true)
    // A renewal opens a new TLS connection: the agent trusts the server through the bundle it synced,
    // and the sync stream moves to it (wait for that before the clock jumps past the real one).
    const before = sync.snapshots.length
    await expect(client.renew()).resolves.toBeDefined()
    await sync.next(() => true, before)

    await advanceTo(1)
    const pruned = await sync.next(
      (s) => !hasAuthority(s.bundles[0]?.toX509Bundle(), oldCa),
      sync.snapshots.length - 1,
    )
    expect(hasAuthority(pruned.snapshot.bundles[0]?.toX509Bundle(), prepared)).toBe(true)
  })
})
