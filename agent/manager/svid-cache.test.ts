import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../lib/core/clock.js'
import type { RegistrationEntry } from '../../lib/core/registration-entry.js'
import { RevocationList } from '../../lib/core/revocation.js'
import { Selector } from '../../lib/core/selector.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import { parseCsr } from '../../lib/core/x509/csr.js'
import { generateP256PrivateKey } from '../../lib/core/x509/generate-key.js'
import { signX509SvidFromCsr } from '../../server/ca/svid-signer.js'
import { TestCa } from '../../test/helpers/test-ca.js'
import type { SigningServer, SignResult } from './ports.js'
import { SvidCache } from './svid-cache.js'

const T0 = Date.now()
const H = 3600_000
const uid0 = [Selector.parse('unix:uid:0')]

function entry(id: string, revision = 0): RegistrationEntry {
  return {
    id,
    spiffeId: SpiffeId.parse(`spiffe://example.org/${id}`),
    parentId: SpiffeId.parse('spiffe://example.org/agent'),
    selectors: uid0,
    x509SvidTtlMs: 0,
    jwtSvidTtlMs: 0,
    dnsNames: [],
    hint: '',
    admin: false,
    federatesWith: [],
    expiresAtMs: undefined,
    revision,
    createdAtMs: T0,
  }
}

/** The signing port over a real in-memory CA; `down` makes every call fail as an unreachable server does. */
class CaServer implements SigningServer {
  calls = 0
  down = false
  constructor(
    private readonly ca: TestCa,
    private readonly clock: ManualClock,
  ) {}
  async batchNewX509Svid(
    params: ReadonlyArray<{ entryId: string; csrDer: Buffer }>,
  ): Promise<ReadonlyArray<SignResult>> {
    this.calls++
    if (this.down) throw new Error('UNAVAILABLE')
    return Promise.all(
      params.map(async (p) => {
        parseCsr(p.csrDer)
        const leaf = await signX509SvidFromCsr(this.ca.ca, {
          csrDer: p.csrDer,
          id: SpiffeId.parse(`spiffe://example.org/${p.entryId}`),
          ttlMs: H,
          nowMs: this.clock.nowMs(),
        })
        return { ok: true as const, chainDer: [leaf.der], expiresAtMs: leaf.notAfterMs }
      }),
    )
  }
  async newJwtSvid(): Promise<never> {
    throw new Error('not used here')
  }
  async newWitSvid(): Promise<never> {
    throw new Error('not used here')
  }
}

async function setup() {
  const clock = new ManualClock(T0)
  const server = new CaServer(await TestCa.create('example.org'), clock)
  let changes = 0
  const cache = new SvidCache({
    clock,
    server,
    generateKey: generateP256PrivateKey,
    onChange: () => changes++,
    random: () => 0,
  })
  return { clock, server, cache, changes: () => changes }
}

describe('SvidCache', () => {
  it('signs every entry of a snapshot, serves them oldest first, and rotates at half-life', async () => {
    const { clock, server, cache } = await setup()
    await cache.setEntries([entry('a'), entry('b')])
    const first = cache.viewFor(uid0)
    expect(first.svids.map((s) => s.id.path)).toEqual(['/a', '/b'])
    expect(first.pending).toBe(0)
    clock.advance(H / 2 - 20_000)
    await cache.reconcile()
    expect(server.calls).toBe(1)
    clock.advance(20_000)
    await cache.reconcile()
    expect(server.calls).toBe(2)
    expect(cache.viewFor(uid0).svids[0]?.issuedAtMs).toBe(clock.nowMs())
  })

  it('re-signs a changed entry and drops a deleted one', async () => {
    const { cache } = await setup()
    await cache.setEntries([entry('a'), entry('b')])
    const before = cache.viewFor(uid0).svids[0]?.chainDer
    await cache.setEntries([entry('a', 1)])
    const after = cache.viewFor(uid0).svids
    expect(after.map((s) => s.id.path)).toEqual(['/a'])
    expect(after[0]?.chainDer.equals(before as Buffer)).toBe(false)
  })

  it('keeps serving what it has while the server is down, and backs off its retries', async () => {
    const { clock, server, cache } = await setup()
    await cache.setEntries([entry('a')])
    server.down = true
    clock.advance(H / 2)
    await cache.reconcile() // fails: next try in 1 s
    const calls = server.calls
    await cache.reconcile()
    expect(server.calls).toBe(calls) // backing off
    expect(cache.viewFor(uid0).svids).toHaveLength(1) // still served until it expires
    clock.advance(1000)
    await cache.reconcile() // fails again: next try in 2 s
    clock.advance(1000)
    await cache.reconcile()
    expect(server.calls).toBe(calls + 1)
    server.down = false
    await cache.setEntries([entry('a')]) // a snapshot: the server is back, sign at once
    expect(server.calls).toBe(calls + 2)
    clock.advance(H / 2)
    expect(cache.viewFor(uid0).svids).toHaveLength(1)
  })

  it('replaces at once an SVID that a revocation covers (new key, new serial), and only that one', async () => {
    const { server, cache } = await setup()
    await cache.setEntries([entry('a'), entry('b')])
    const [a, b] = cache.viewFor(uid0).svids
    const revoked = RevocationList.of([
      {
        kind: 'x509-serial',
        value: a?.serialHex ?? '',
        issuedBeforeMs: 0,
        revokedAtMs: T0,
        keepUntilMs: T0 + H,
        reason: '',
      },
    ])
    await cache.rotateRevoked(revoked)
    const [a2, b2] = cache.viewFor(uid0).svids
    expect(server.calls).toBe(2)
    expect(a2?.serialHex).not.toBe(a?.serialHex)
    expect(a2?.keyPkcs8.equals(a?.keyPkcs8 ?? Buffer.alloc(0))).toBe(false)
    expect(b2).toBe(b)
    await cache.rotateRevoked(revoked) // the new one is not covered: nothing more is signed
    expect(server.calls).toBe(2)
  })
})
