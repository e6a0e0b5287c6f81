import { beforeAll, describe, expect, it } from 'vitest'
import { TestCa } from '../../test/helpers/test-ca.js'
import { BundleSet } from '../core/bundle/bundle-source.js'
import { X509Bundle } from '../core/bundle/x509-bundle.js'
import { isIdentityError } from '../core/errors.js'
import { SpiffeId } from '../core/spiffe-id.js'
import { TrustDomain } from '../core/trust-domain.js'
import type { X509Svid } from '../core/x509/x509-svid.js'
import { type Authorizer, authorizeAny, authorizeId } from './authorizer.js'
import { verifyX509Peer } from './x509-peer.js'
import { X509PeerCache } from './x509-peer-cache.js'

const HOUR = 3_600_000
const NOW = Date.now()
const ORG = TrustDomain.parse('example.org')

let ca: TestCa
let otherCaSameTd: TestCa
let otherTd: TestCa
let rogue: TestCa
let rogueInOrg: TestCa
let partner: TestCa
let workload: X509Svid
let bundles: BundleSet

const derOf = (svid: X509Svid) => svid.certificates.map((c) => c.der)

/** The error code `fn` threw, or 'ok'. */
function codeOf(fn: () => unknown): string {
  try {
    fn()
    return 'ok'
  } catch (err) {
    return isIdentityError(err) ? err.code : String(err)
  }
}

beforeAll(async () => {
  ;[ca, otherCaSameTd, otherTd, rogue, rogueInOrg, partner] = await Promise.all([
    TestCa.create('example.org'),
    TestCa.create('example.org'),
    TestCa.create('other.org'),
    // A CA that signs example.org IDs but is filed under other.org's bundle.
    TestCa.create('example.org', { bundleTrustDomain: 'other.org' }),
    // And one that signs other.org IDs, filed under example.org's bundle.
    TestCa.create('other.org', { bundleTrustDomain: 'example.org' }),
    TestCa.create('partner.example'),
  ])
  workload = (await ca.issue('spiffe://example.org/workload')).svid
  bundles = BundleSet.of({
    x509: [
      ca.bundle.withAuthority(rogueInOrg.ca.certificate),
      X509Bundle.fromAuthorities(TrustDomain.parse('other.org'), [
        ...otherTd.bundle.authorities,
        ...rogue.bundle.authorities,
      ]),
      partner.bundle,
    ],
  })
})

const verify = (chain: ReadonlyArray<Uint8Array>, authorizer: Authorizer = authorizeAny(), nowMs = NOW) =>
  verifyX509Peer(chain, bundles, authorizer, { nowMs, cache: false })

describe('verifyX509Peer accepts', () => {
  it('an SVID of the trust domain, returning its ID and the path to the bundle authority', () => {
    const peer = verify(derOf(workload))
    expect(peer.id.toString()).toBe('spiffe://example.org/workload')
    expect(peer.path.map((c) => c.serialHex)).toEqual([
      workload.certificates[0]?.serialHex,
      ca.ca.certificate.serialHex,
    ])
  })

  it('a federated trust domain peer, against its own bundle', async () => {
    const svid = (await partner.issue('spiffe://partner.example/x')).svid
    expect(verify(derOf(svid)).id.toString()).toBe('spiffe://partner.example/x')
  })

  it('with the clock as the time source', () => {
    const clock = { nowMs: () => NOW }
    expect(verifyX509Peer(derOf(workload), bundles, authorizeAny(), { clock, cache: false }).id.path).toBe(
      '/workload',
    )
  })
})

describe('verifyX509Peer refuses', () => {
  it.each<[string, () => Promise<ReadonlyArray<Uint8Array>>, string]>([
    [
      'an SVID of another CA of the same trust domain',
      async () => derOf((await otherCaSameTd.issue('spiffe://example.org/w')).svid),
      'ERR_X509_SVID_UNTRUSTED',
    ],
    [
      'an SVID of a trust domain without a bundle',
      async () =>
        derOf((await TestCa.create('nobody.org').then((c) => c.issue('spiffe://nobody.org/w'))).svid),
      'ERR_BUNDLE_NOT_FOUND',
    ],
    [
      'an example.org SVID from a rogue CA filed under other.org',
      async () => derOf((await rogue.issue('spiffe://example.org/w')).svid),
      'ERR_X509_SVID_UNTRUSTED',
    ],
    [
      'an other.org SVID from a CA filed under example.org',
      async () => derOf((await rogueInOrg.issue('spiffe://other.org/w')).svid),
      'ERR_X509_SVID_UNTRUSTED',
    ],
    [
      'an expired SVID',
      async () =>
        derOf((await ca.issue('spiffe://example.org/w', { nowMs: NOW - 3 * HOUR, ttlMs: HOUR })).svid),
      'ERR_X509_SVID_EXPIRED',
    ],
    [
      'an SVID not valid yet',
      async () => derOf((await ca.issue('spiffe://example.org/w', { nowMs: NOW + HOUR })).svid),
      'ERR_X509_SVID_EXPIRED',
    ],
    ['the CA certificate itself', async () => [ca.ca.certificate.der], 'ERR_X509_SVID_INVALID'],
    ['an empty chain', async () => [], 'ERR_X509_SVID_INVALID'],
    [
      'more than 10 certificates',
      async () => Array.from({ length: 11 }, () => workload.certificates[0]!.der),
      'ERR_X509_SVID_INVALID',
    ],
    ['garbage', async () => [Buffer.from('not a certificate')], 'ERR_CERT_MALFORMED'],
    [
      'two certificates in one element',
      async () => [Buffer.concat([workload.certificates[0]!.der, ca.ca.certificate.der])],
      'ERR_CERT_MALFORMED',
    ],
  ])('%s', async (_name, chain, code) => {
    const der = await chain()
    expect(codeOf(() => verify(der))).toBe(code)
  })

  it('a peer the authorizer refuses', () => {
    const only = authorizeId(SpiffeId.parse('spiffe://example.org/someone-else'))
    expect(codeOf(() => verify(derOf(workload), only))).toBe('ERR_PEER_UNAUTHORIZED')
  })

  it("a federated peer whose CA sits only in another trust domain's bundle (never pooled)", async () => {
    const svid = (await partner.issue('spiffe://partner.example/x')).svid
    const merged = BundleSet.of({ x509: [ca.bundle.withAuthority(partner.ca.certificate)] })
    expect(
      codeOf(() => verifyX509Peer(derOf(svid), merged, authorizeAny(), { nowMs: NOW, cache: false })),
    ).toBe('ERR_BUNDLE_NOT_FOUND')
  })
})

describe('the cache of verified chains', () => {
  it('answers a repeat peer from the cache, and still runs the authorizer', () => {
    const cache = new X509PeerCache()
    let calls = 0
    const counting: Authorizer = () => {
      calls++
    }
    verifyX509Peer(derOf(workload), bundles, counting, { nowMs: NOW, cache })
    const again = verifyX509Peer(derOf(workload), bundles, counting, { nowMs: NOW + 1000, cache })
    expect(again.id.toString()).toBe('spiffe://example.org/workload')
    expect(cache.stats).toEqual({ hits: 1, misses: 1, size: 1 })
    expect(calls).toBe(2)
    const refuse = authorizeId(SpiffeId.parse('spiffe://example.org/x'))
    expect(codeOf(() => verifyX509Peer(derOf(workload), bundles, refuse, { nowMs: NOW, cache }))).toBe(
      'ERR_PEER_UNAUTHORIZED',
    )
  })

  it('re-verifies when the bundle changed: a removed CA is no longer trusted', () => {
    const cache = new X509PeerCache()
    verifyX509Peer(derOf(workload), bundles, authorizeAny(), { nowMs: NOW, cache })
    const withoutCa = bundles.withX509Bundle(ca.bundle.withoutAuthority(ca.ca.certificate))
    expect(
      codeOf(() => verifyX509Peer(derOf(workload), withoutCa, authorizeAny(), { nowMs: NOW, cache })),
    ).toBe('ERR_X509_SVID_UNTRUSTED')
    const withoutTd = bundles.withoutTrustDomain(ORG)
    expect(
      codeOf(() => verifyX509Peer(derOf(workload), withoutTd, authorizeAny(), { nowMs: NOW, cache })),
    ).toBe('ERR_BUNDLE_NOT_FOUND')
    expect(cache.stats.hits).toBe(0)
  })

  it('keeps a hit across an update that delivers the same authorities, and misses when one is added', () => {
    const cache = new X509PeerCache()
    verifyX509Peer(derOf(workload), bundles, authorizeAny(), { nowMs: NOW, cache })
    const same = bundles.withX509Bundle(
      X509Bundle.fromAuthorities(ORG, bundles.getX509BundleForTrustDomain(ORG)!.authorities),
    )
    verifyX509Peer(derOf(workload), same, authorizeAny(), { nowMs: NOW, cache })
    expect(cache.stats).toMatchObject({ hits: 1, misses: 1 })
    const rotated = bundles.withX509Bundle(ca.bundle.withAuthority(otherCaSameTd.ca.certificate))
    verifyX509Peer(derOf(workload), rotated, authorizeAny(), { nowMs: NOW, cache })
    expect(cache.stats).toMatchObject({ hits: 1, misses: 2 })
  })

  it('never answers outside the validity window of the path', () => {
    const cache = new X509PeerCache()
    verifyX509Peer(derOf(workload), bundles, authorizeAny(), { nowMs: NOW, cache })
    const late = workload.certificates[0]!.notAfterMs + 1
    expect(
      codeOf(() => verifyX509Peer(derOf(workload), bundles, authorizeAny(), { nowMs: late, cache })),
    ).toBe('ERR_X509_SVID_EXPIRED')
  })

  it('is bounded, dropping the least recently used chain first', async () => {
    const cache = new X509PeerCache({ maxEntries: 2 })
    const svids = await Promise.all([1, 2, 3].map((n) => ca.issue(`spiffe://example.org/w${n}`)))
    const [a, b, c] = svids.map((s) => derOf(s.svid)) as [Buffer[], Buffer[], Buffer[]]
    for (const chain of [a, b, a, c]) verifyX509Peer(chain, bundles, authorizeAny(), { nowMs: NOW, cache })
    expect(cache.stats).toEqual({ hits: 1, misses: 3, size: 2 })
    verifyX509Peer(a, bundles, authorizeAny(), { nowMs: NOW, cache })
    expect(cache.stats.hits).toBe(2)
    verifyX509Peer(b, bundles, authorizeAny(), { nowMs: NOW, cache })
    expect(cache.stats.misses).toBe(4)
  })

  it('does not remember failures', async () => {
    const cache = new X509PeerCache()
    const foreign = derOf((await otherCaSameTd.issue('spiffe://example.org/w')).svid)
    expect(codeOf(() => verifyX509Peer(foreign, bundles, authorizeAny(), { nowMs: NOW, cache }))).not.toBe(
      'ok',
    )
    expect(cache.stats.size).toBe(0)
  })

  it('refuses a bad size', () => {
    expect(() => new X509PeerCache({ maxEntries: 0 })).toThrow(RangeError)
  })
})
