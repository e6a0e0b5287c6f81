import { generateKeyPair } from 'node:crypto'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { isIdentityError } from '../errors.js'
import { TrustDomain } from '../trust-domain.js'
import { BundleSet } from './bundle-source.js'
import { JwtBundle } from './jwt-bundle.js'
import { SpiffeBundle } from './spiffe-bundle.js'
import { caP256CertPem, caRsaCertPem } from './test-fixtures.js'
import { X509Bundle } from './x509-bundle.js'

const a = TrustDomain.parse('a.example')
const b = TrustDomain.parse('b.example')
const x509A = X509Bundle.parsePem(a, caP256CertPem)
const x509B = X509Bundle.parsePem(b, caRsaCertPem)

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return isIdentityError(err) ? err.code : `not an IdentityError: ${String(err)}`
  }
  return undefined
}

describe('BundleSet', () => {
  it('answers only with the bundle of the trust domain asked for', async () => {
    const { publicKey } = await promisify(generateKeyPair)('ec', { namedCurve: 'P-256' })
    const jwtB = JwtBundle.fromAuthorities(b, [{ kid: 'k', key: publicKey }])
    const set = BundleSet.of({ x509: [x509A, x509B], jwt: [jwtB] })
    expect(set.getX509BundleForTrustDomain(TrustDomain.parse('a.example'))).toBe(x509A)
    expect(set.getX509BundleForTrustDomain(b)).toBe(x509B)
    expect(set.getJwtBundleForTrustDomain(a)).toBeUndefined()
    expect(set.getJwtBundleForTrustDomain(b)).toBe(jwtB)
    expect(set.getX509BundleForTrustDomain(TrustDomain.parse('c.example'))).toBeUndefined()
    expect(set.trustDomains().map((t) => t.name)).toEqual(['a.example', 'b.example'])
  })

  it('refuses two bundles of one kind for a trust domain instead of merging them', () => {
    expect(codeOf(() => BundleSet.of({ x509: [x509A, X509Bundle.empty(a)] }))).toBe('ERR_BUNDLE_MALFORMED')
  })

  it('replaces and removes through new sets', () => {
    const set = BundleSet.of({ x509: [x509A] })
    const replaced = set.withX509Bundle(X509Bundle.empty(a))
    expect(set.getX509BundleForTrustDomain(a)).toBe(x509A)
    expect(replaced.getX509BundleForTrustDomain(a)?.isEmpty).toBe(true)
    const withJwt = replaced.withJwtBundle(JwtBundle.empty(a))
    expect(withJwt.getJwtBundleForTrustDomain(a)?.isEmpty).toBe(true)
    const removed = withJwt.withoutTrustDomain(a)
    expect(removed.getX509BundleForTrustDomain(a)).toBeUndefined()
    expect(removed.getJwtBundleForTrustDomain(a)).toBeUndefined()
    expect(BundleSet.empty().trustDomains()).toEqual([])
  })

  it('takes the X.509 and JWT parts of SPIFFE bundles', () => {
    const set = BundleSet.fromSpiffeBundles([
      SpiffeBundle.of(a, { x509: x509A }),
      SpiffeBundle.of(b, { x509: x509B }),
    ])
    expect(set.getX509BundleForTrustDomain(a)?.equals(x509A)).toBe(true)
    expect(set.getJwtBundleForTrustDomain(b)?.isEmpty).toBe(true)
    expect(set.x509Bundles()).toHaveLength(2)
    expect(set.jwtBundles().map((j) => j.trustDomain.name)).toEqual(['a.example', 'b.example'])
  })
})
