import { generateKeyPairSync } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import type { BundleSet } from '../bundle/bundle-source.js'
import { JwtBundle } from '../bundle/jwt-bundle.js'
import { type Revocation, RevocationList, type RevocationListSource } from '../revocation.js'
import { TrustDomain } from '../trust-domain.js'
import { ValidatedJwtSvidCache } from './jwt-svid-cache.js'
import { DEFAULT_JWT_LEEWAY_MS } from './jwt-svid-validate.js'
import {
  goodClaims as claims,
  craft,
  goodHeader as header,
  makeTestKeys,
  NOW,
  rejectionCode,
  type TestKeys,
} from './test-tokens.js'

let keys: TestKeys
beforeAll(async () => {
  keys = await makeTestKeys()
})

const TD = TrustDomain.parse('example.org')
const token = () => craft(header, { ...claims, jti: 'j-1' }, keys.ec)

/** A bundle source whose set can be replaced, as a Workload API watch replaces it. */
function mutableBundles(initial: BundleSet) {
  let current = initial
  return {
    source: { getJwtBundleForTrustDomain: (td: TrustDomain) => current.getJwtBundleForTrustDomain(td) },
    replace(next: BundleSet) {
      current = next
    },
  }
}

/** A revocation source whose list can be replaced. */
function mutableRevocations() {
  let list = RevocationList.EMPTY
  const source: RevocationListSource = { getRevocations: () => list }
  return {
    source,
    revoke(r: Omit<Revocation, 'issuedBeforeMs' | 'revokedAtMs' | 'keepUntilMs' | 'reason'>) {
      list = RevocationList.of([
        { ...r, issuedBeforeMs: 0, revokedAtMs: NOW, keepUntilMs: NOW + 3_600_000, reason: 'test' },
      ])
    },
  }
}

describe('ValidatedJwtSvidCache', () => {
  it('checks the signature of a token once and answers its repeats from the cache', async () => {
    const cache = new ValidatedJwtSvidCache()
    const t = token()
    const first = await cache.validate(t, keys.bundles, 'svc', { nowMs: NOW })
    const second = await cache.validate(t, keys.bundles, 'svc', { nowMs: NOW + 1000 })
    expect(second).toBe(first)
    expect(cache.stats).toEqual({ hits: 1, misses: 1, size: 1 })
  })

  it('refuses a token revoked after it was cached (ERR_CREDENTIAL_REVOKED)', async () => {
    const cache = new ValidatedJwtSvidCache()
    const revocations = mutableRevocations()
    const t = token()
    await cache.validate(t, keys.bundles, 'svc', { nowMs: NOW, revocations: revocations.source })
    revocations.revoke({ kind: 'jwt-id', value: 'j-1' })
    const again = cache.validate(t, keys.bundles, 'svc', { nowMs: NOW, revocations: revocations.source })
    expect(await rejectionCode(again)).toBe('ERR_CREDENTIAL_REVOKED')
    expect(cache.stats.size).toBe(0)
  })

  it('refuses a cached token once the bundle rotated its key out (ERR_JWT_KEY_NOT_FOUND)', async () => {
    const cache = new ValidatedJwtSvidCache()
    const bundles = mutableBundles(keys.bundles)
    const t = token()
    await cache.validate(t, bundles.source, 'svc', { nowMs: NOW })
    const fresh = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey
    bundles.replace(keys.bundles.withJwtBundle(JwtBundle.fromAuthorities(TD, [{ kid: 'ec2', key: fresh }])))
    expect(await rejectionCode(cache.validate(t, bundles.source, 'svc', { nowMs: NOW }))).toBe(
      'ERR_JWT_KEY_NOT_FOUND',
    )
  })

  it('refuses a cached token once its kid names another key (ERR_JWT_SIGNATURE_INVALID)', async () => {
    const cache = new ValidatedJwtSvidCache()
    const bundles = mutableBundles(keys.bundles)
    const t = token()
    await cache.validate(t, bundles.source, 'svc', { nowMs: NOW })
    const fresh = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey
    bundles.replace(keys.bundles.withJwtBundle(JwtBundle.fromAuthorities(TD, [{ kid: 'ec', key: fresh }])))
    expect(await rejectionCode(cache.validate(t, bundles.source, 'svc', { nowMs: NOW }))).toBe(
      'ERR_JWT_SIGNATURE_INVALID',
    )
  })

  it('refuses a cached token past its exp plus the leeway (ERR_JWT_EXPIRED)', async () => {
    const cache = new ValidatedJwtSvidCache()
    const t = token()
    await cache.validate(t, keys.bundles, 'svc', { nowMs: NOW })
    const later = claims.exp * 1000 + DEFAULT_JWT_LEEWAY_MS
    expect(await rejectionCode(cache.validate(t, keys.bundles, 'svc', { nowMs: later }))).toBe(
      'ERR_JWT_EXPIRED',
    )
    expect(cache.stats.size).toBe(0)
  })

  it('refuses a cached token for another audience (ERR_JWT_AUDIENCE_MISMATCH)', async () => {
    const cache = new ValidatedJwtSvidCache()
    const t = token()
    await cache.validate(t, keys.bundles, 'svc', { nowMs: NOW })
    expect(await rejectionCode(cache.validate(t, keys.bundles, 'other', { nowMs: NOW }))).toBe(
      'ERR_JWT_AUDIENCE_MISMATCH',
    )
  })

  it('keeps at most maxEntries tokens, the oldest dropped first', async () => {
    const cache = new ValidatedJwtSvidCache(2)
    for (const jti of ['a', 'b', 'c'])
      await cache.validate(craft(header, { ...claims, jti }, keys.ec), keys.bundles, 'svc', { nowMs: NOW })
    expect(cache.stats.size).toBe(2)
    expect(() => new ValidatedJwtSvidCache(0)).toThrow(RangeError)
  })
})
