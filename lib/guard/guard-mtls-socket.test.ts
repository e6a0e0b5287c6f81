import { beforeAll, describe, expect, it } from 'vitest'
import {
  CLAUDE,
  guardKeys,
  loadGuardKeys,
  makeGuard,
  request,
  tlsSocket,
} from '../../test/helpers/guard-fixture.js'
import type { BundleSet } from '../core/bundle/bundle-source.js'
import type { TrustDomain } from '../core/trust-domain.js'

beforeAll(loadGuardKeys)

/** An X.509 bundle source whose set can be replaced, as the agent's bundle stream replaces it. */
function mutableBundles(initial: BundleSet) {
  let current = initial
  return {
    source: { getX509BundleForTrustDomain: (td: TrustDomain) => current.getX509BundleForTrustDomain(td) },
    replace(next: BundleSet) {
      current = next
    },
  }
}

describe('a client certificate verified once per connection', () => {
  it('is refused on the same connection once the bundle no longer holds its CA', async () => {
    const bundles = mutableBundles(guardKeys().bundles)
    const { guard } = makeGuard({ x509Bundles: bundles.source })
    const leaf = (await guardKeys().ca.issue(CLAUDE)).svid.certificates[0]!
    const mtls = request({}, { socket: tlsSocket(leaf.der) })
    expect((await guard.check(mtls)).allowed).toBe(true)
    expect((await guard.check(mtls)).allowed).toBe(true)
    bundles.replace(guardKeys().bundles.withX509Bundle(guardKeys().rogueCa.bundle))
    expect(await guard.check(mtls)).toMatchObject({
      allowed: false,
      status: 401,
      code: 'ERR_X509_SVID_UNTRUSTED',
    })
  })

  it('is refused on the same connection once the certificate expired, by the guard clock', async () => {
    const { guard, clock } = makeGuard()
    const leaf = (await guardKeys().ca.issue(CLAUDE)).svid.certificates[0]!
    const mtls = request({}, { socket: tlsSocket(leaf.der) })
    expect((await guard.check(mtls)).allowed).toBe(true)
    clock.set(leaf.notAfterMs + 1)
    expect(await guard.check(mtls)).toMatchObject({
      allowed: false,
      status: 401,
      code: 'ERR_X509_SVID_EXPIRED',
    })
  })
})
