import { once } from 'node:events'
import { createServer, connect as netConnect, type Server } from 'node:net'
import { status } from '@grpc/grpc-js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { validateJwtSvid } from '../../lib/core/jwt/jwt-svid-validate.js'
import { TrustDomain } from '../../lib/core/trust-domain.js'
import { verifyX509Svid } from '../../lib/core/x509/verify-chain.js'
import { BundleSource } from '../../lib/workload/bundle-source.js'
import { JwtSource } from '../../lib/workload/jwt-source.js'
import type { X509Context } from '../../lib/workload/responses.js'
import { WorkloadApiError } from '../../lib/workload/workload-api-error.js'
import { WorkloadClient } from '../../lib/workload/workload-client.js'
import { X509Source } from '../../lib/workload/x509-source.js'
import { type Stack, startStack } from '../helpers/stack.js'
import { fastBackoff, nextUpdate as waitForUpdate } from '../helpers/x509-updates.js'

const TD = 'tessera.local'
const td = TrustDomain.parse(TD)
const uid = process.getuid?.() ?? 0
const WEB = `spiffe://${TD}/workload/web`

let stack: Stack
let endpoint: string

beforeAll(async () => {
  stack = await startStack({ trustDomain: TD })
  endpoint = `unix://${stack.socketPath}`
  await stack.registerEntry({ spiffeId: WEB, selectors: [`unix:uid:${uid}`], hint: 'web' })
})

afterAll(async () => {
  await stack?.stop()
})

/** The next update of `source` that satisfies `accept` (see test/helpers/x509-updates.ts). */
function nextUpdate(
  source: X509Source,
  accept: (c: X509Context) => boolean,
  timeoutMs = 10_000,
): Promise<X509Context> {
  return waitForUpdate(source, accept, timeoutMs, () => stack.output())
}

describe('X509Source against a real agent', () => {
  it('waits for the entry to reach the agent (PERMISSION_DENIED is retried), then holds the default SVID and bundle', async () => {
    const errors: string[] = []
    const source = await X509Source.create({
      endpoint,
      newBackoff: fastBackoff,
      timeoutMs: 20_000,
      onError: (e) => errors.push(e.code),
    })
    try {
      const svid = source.getX509Svid()
      expect(svid.id.toString()).toBe(WEB)
      expect(svid.hint).toBe('web')
      const bundle = source.getX509BundleForTrustDomain(td)
      expect(bundle?.isEmpty).toBe(false)
      const verified = verifyX509Svid(svid.certificates, source, Date.now())
      expect(verified.id.toString()).toBe(WEB)
      expect(source.getX509BundleForTrustDomain(TrustDomain.parse('other.org'))).toBeUndefined()
    } finally {
      source.close()
    }
    expect(source.getX509BundleForTrustDomain(td)).toBeUndefined()
    expect(() => source.getX509Svid()).toThrow(
      expect.objectContaining({ code: 'ERR_WORKLOAD_API_UNAVAILABLE' }),
    )
  })
})

describe('WorkloadClient against a real agent', () => {
  let client: WorkloadClient
  beforeAll(() => {
    client = WorkloadClient.connect({ endpoint, timeoutMs: 10_000 })
  })
  afterAll(() => client?.close())

  it('fetches the X.509 context, the X.509 bundles and the JWT bundles', async () => {
    const context = await client.fetchX509Context()
    expect(context.svids[0]?.id.toString()).toBe(WEB)
    const x509 = await client.fetchX509Bundles()
    expect(
      x509.getX509BundleForTrustDomain(td)?.equals(context.bundles.getX509BundleForTrustDomain(td)!),
    ).toBe(true)
    const jwt = await client.fetchJwtBundles()
    expect(jwt.getJwtBundleForTrustDomain(td)?.isEmpty).toBe(false)
  })

  it('fetches a JWT-SVID whose aud holds both audiences, and for a given SPIFFE ID', async () => {
    const svid = await client.fetchJwtSvid({ audience: ['https://a.example', 'b'] })
    expect(svid.id.toString()).toBe(WEB)
    expect(svid.audience).toEqual(['https://a.example', 'b'])
    expect(svid.hint).toBe('web')
    const [only] = await client.fetchJwtSvids({ audience: 'c', spiffeId: WEB })
    expect(only?.id.toString()).toBe(WEB)
    await expect(client.fetchJwtSvid({ audience: [] })).rejects.toMatchObject({ code: 'ERR_REQUEST_INVALID' })
  })

  it('has the agent validate a token: valid, wrong audience, junk', async () => {
    const { token } = await client.fetchJwtSvid({ audience: ['svc'] })
    const ok = await client.validateJwtSvid(token, 'svc')
    expect(ok.id.toString()).toBe(WEB)
    expect(ok.claims['sub']).toBe(WEB)
    expect(ok.claims['aud']).toEqual(['svc'])
    const wrong = await client.validateJwtSvid(token, 'other').catch((e: unknown) => e)
    expect(wrong).toBeInstanceOf(WorkloadApiError)
    expect(wrong).toMatchObject({ code: 'ERR_JWT_AUDIENCE_MISMATCH', status: status.INVALID_ARGUMENT })
    await expect(client.validateJwtSvid('junk', 'svc')).rejects.toMatchObject({
      status: status.INVALID_ARGUMENT,
    })
  })

  it('JwtSource and BundleSource hold the bundles that validate tokens locally', async () => {
    const jwtSource = await JwtSource.create({ endpoint, newBackoff: fastBackoff })
    const bundles = await BundleSource.create({ endpoint, newBackoff: fastBackoff })
    try {
      const { token } = await jwtSource.fetchJwtSvid({ audience: 'local' })
      for (const source of [jwtSource, bundles]) {
        const svid = await validateJwtSvid(token, source, 'local', { nowMs: Date.now() })
        expect(svid.id.toString()).toBe(WEB)
      }
      expect(bundles.getX509BundleForTrustDomain(td)?.isEmpty).toBe(false)
      expect(bundles.bundles.trustDomains().map((t) => t.name)).toEqual([TD])
    } finally {
      jwtSource.close()
      bundles.close()
    }
    await expect(jwtSource.fetchJwtSvid({ audience: 'x' })).rejects.toMatchObject({
      code: 'ERR_WORKLOAD_API_UNAVAILABLE',
    })
  })

  it('refuses tcp:// endpoints the spec forbids, and works through one it allows', async () => {
    for (const bad of [
      'tcp://127.0.0.1:8000/foo',
      'tcp://localhost:8000',
      'tcp://127.0.0.1',
      'unix://host/x.sock',
    ]) {
      expect(() => WorkloadClient.connect({ endpoint: bad })).toThrow(
        expect.objectContaining({ code: 'ERR_ENDPOINT_INVALID' }),
      )
    }
    // A TCP front for the agent's socket: the agent attests the proxy, which is this process.
    const proxy: Server = createServer((tcp) => {
      const uds = netConnect(stack.socketPath)
      tcp.pipe(uds).pipe(tcp)
      uds.on('error', () => tcp.destroy())
      tcp.on('error', () => uds.destroy())
    })
    proxy.listen(0, '127.0.0.1')
    await once(proxy, 'listening')
    const { port } = proxy.address() as { port: number }
    const tcpClient = WorkloadClient.connect({ endpoint: `tcp://127.0.0.1:${port}` })
    try {
      expect(tcpClient.endpoint.grpcTarget).toBe(`ipv4:127.0.0.1:${port}`)
      const context = await tcpClient.fetchX509Context({ timeoutMs: 10_000 })
      expect(context.svids[0]?.id.toString()).toBe(WEB)
    } finally {
      tcpClient.close()
      proxy.close()
    }
  })
})

describe('updates pushed by the agent', () => {
  let source: X509Source
  beforeAll(async () => {
    source = await X509Source.create({ endpoint, newBackoff: fastBackoff })
  })
  afterAll(() => source?.close())

  it('an entry created and deleted reaches the open stream, each update a full snapshot', async () => {
    const DB = `spiffe://${TD}/workload/db`
    const added = nextUpdate(source, (c) => c.svids.some((s) => s.id.toString() === DB))
    const id = await stack.registerEntry({
      spiffeId: DB,
      selectors: [`unix:uid:${uid}`, `unix:gid:${process.getgid?.() ?? 0}`],
    })
    const context = await added
    expect(context.svids[0]?.id.toString()).toBe(WEB)
    expect(source.getX509Svids().map((s) => s.id.toString())).toContain(DB)
    const removed = nextUpdate(source, (c) => !c.svids.some((s) => s.id.toString() === DB))
    await stack.deleteEntry(id)
    await removed
    expect(source.getX509Svids().map((s) => s.id.toString())).toEqual([WEB])
  })

  it('picks up rotation before expiry (a 6 s SVID is replaced at about half-life)', async () => {
    const ROT = `spiffe://${TD}/workload/rotating`
    const serialOf = (c: X509Context) =>
      c.svids.find((s) => s.id.toString() === ROT)?.certificates[0]?.serialHex
    const first = nextUpdate(source, (c) => serialOf(c) !== undefined)
    const id = await stack.registerEntry({ spiffeId: ROT, selectors: [`unix:uid:${uid}`], x509Ttl: '6s' })
    const firstSerial = serialOf(await first)
    const rotated = await nextUpdate(
      source,
      (c) => serialOf(c) !== undefined && serialOf(c) !== firstSerial,
      8000,
    )
    const leaf = rotated.svids.find((s) => s.id.toString() === ROT)?.certificates[0]
    expect(leaf?.notAfterMs).toBeGreaterThan(Date.now())
    expect(source.getX509Svid().id.toString()).toBe(WEB)
    await stack.deleteEntry(id)
  })
})
