import type { KeyObject } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { generateP256Key } from '../../../server/ca/key-generation.js'
import { buildCertificate, type CertSpec } from '../../../test/helpers/cert-builder.js'
import { BundleSet } from '../bundle/bundle-source.js'
import { X509Bundle } from '../bundle/x509-bundle.js'
import { TrustDomain } from '../trust-domain.js'
import { type Certificate, KeyUsageBit } from './certificate.js'
import { verifyX509Svid } from './verify-chain.js'

const NOW = Date.UTC(2026, 5, 1)
const H = 3600_000
const td = TrustDomain.parse('example.org')
const CA_KU = [KeyUsageBit.keyCertSign, KeyUsageBit.cRLSign]
const LEAF_KU = [KeyUsageBit.digitalSignature]

let rootKey: KeyObject
let interKey: KeyObject
let leafKey: KeyObject
let root: Certificate
let inter: Certificate
let bundles: BundleSet

function window(): Pick<CertSpec, 'notBeforeMs' | 'notAfterMs'> {
  return { notBeforeMs: NOW - H, notAfterMs: NOW + H }
}

function leaf(over: Partial<CertSpec> = {}): Certificate {
  return buildCertificate({
    subjectKey: leafKey,
    issuer: { cert: root, key: rootKey },
    commonName: 'leaf',
    keyUsage: LEAF_KU,
    eku: true,
    uris: ['spiffe://example.org/workload'],
    ...window(),
    ...over,
  })
}

beforeAll(async () => {
  ;[rootKey, interKey, leafKey] = await Promise.all([generateP256Key(), generateP256Key(), generateP256Key()])
  root = buildCertificate({
    subjectKey: rootKey,
    commonName: 'root',
    isCa: true,
    keyUsage: CA_KU,
    uris: ['spiffe://example.org'],
    ...window(),
  })
  inter = buildCertificate({
    subjectKey: interKey,
    issuer: { cert: root, key: rootKey },
    commonName: 'inter',
    isCa: true,
    keyUsage: CA_KU,
    ...window(),
  })
  bundles = BundleSet.of({ x509: [X509Bundle.fromAuthorities(td, [root])] })
})

describe('verifyX509Svid', () => {
  it('verifies a leaf signed by a bundle authority and returns the path', () => {
    const l = leaf()
    const out = verifyX509Svid([l], bundles, NOW)
    expect(out.id.toString()).toBe('spiffe://example.org/workload')
    expect(out.path).toEqual([l, root])
  })

  it('verifies through an intermediate sent by the peer', () => {
    const l = leaf({ issuer: { cert: inter, key: interKey } })
    expect(verifyX509Svid([l, inter], bundles, NOW).path).toEqual([l, inter, root])
  })

  it.each([
    ['two URI SANs', { uris: ['spiffe://example.org/a', 'spiffe://example.org/b'] }, 'ERR_X509_SVID_INVALID'],
    ['no URI SAN', { uris: [], dnsNames: ['a.example.org'] }, 'ERR_X509_SVID_INVALID'],
    ['a root ID', { uris: ['spiffe://example.org'] }, 'ERR_X509_SVID_INVALID'],
    ['a non-SPIFFE URI', { uris: ['https://example.org/a'] }, 'ERR_X509_SVID_INVALID'],
    ['cA=true', { isCa: true }, 'ERR_X509_SVID_INVALID'],
    [
      'keyCertSign',
      { keyUsage: [KeyUsageBit.digitalSignature, KeyUsageBit.keyCertSign] },
      'ERR_X509_SVID_INVALID',
    ],
    ['cRLSign', { keyUsage: [KeyUsageBit.digitalSignature, KeyUsageBit.cRLSign] }, 'ERR_X509_SVID_INVALID'],
    ['no digitalSignature', { keyUsage: [KeyUsageBit.keyEncipherment] }, 'ERR_X509_SVID_INVALID'],
    ['another trust domain, no bundle', { uris: ['spiffe://other.org/a'] }, 'ERR_BUNDLE_NOT_FOUND'],
    ['expired', { notBeforeMs: NOW - 2 * H, notAfterMs: NOW - 1 }, 'ERR_X509_SVID_EXPIRED'],
    ['not yet valid', { notBeforeMs: NOW + 1000, notAfterMs: NOW + H }, 'ERR_X509_SVID_EXPIRED'],
    ['an unknown critical extension', { unknownCriticalExtension: true }, 'ERR_X509_SVID_UNTRUSTED'],
  ])('refuses a leaf with %s', (_name, over, code) => {
    expect(() => verifyX509Svid([leaf(over as Partial<CertSpec>)], bundles, NOW)).toThrow(
      expect.objectContaining({ code }),
    )
  })

  it('refuses an empty chain', () => {
    expect(() => verifyX509Svid([], bundles, NOW)).toThrow(
      expect.objectContaining({ code: 'ERR_X509_SVID_INVALID' }),
    )
  })

  it('refuses a leaf whose signature is not the issuer', async () => {
    const l = leaf({ signingKey: await generateP256Key() })
    expect(() => verifyX509Svid([l], bundles, NOW)).toThrow(
      expect.objectContaining({ code: 'ERR_X509_SVID_UNTRUSTED' }),
    )
  })

  it('refuses an intermediate the peer did not send', () => {
    const l = leaf({ issuer: { cert: inter, key: interKey } })
    expect(() => verifyX509Svid([l], bundles, NOW)).toThrow(
      expect.objectContaining({ code: 'ERR_X509_SVID_UNTRUSTED' }),
    )
  })

  it('refuses an intermediate that is not a CA', () => {
    const notCa = buildCertificate({
      subjectKey: interKey,
      issuer: { cert: root, key: rootKey },
      commonName: 'inter',
      keyUsage: CA_KU,
      ...window(),
    })
    const l = leaf({ issuer: { cert: notCa, key: interKey } })
    expect(() => verifyX509Svid([l, notCa], bundles, NOW)).toThrow(
      expect.objectContaining({ code: 'ERR_X509_SVID_UNTRUSTED' }),
    )
  })

  it('refuses an expired intermediate', () => {
    const old = buildCertificate({
      subjectKey: interKey,
      issuer: { cert: root, key: rootKey },
      commonName: 'inter',
      isCa: true,
      keyUsage: CA_KU,
      notBeforeMs: NOW - 2 * H,
      notAfterMs: NOW - 1,
    })
    const l = leaf({ issuer: { cert: old, key: interKey } })
    expect(() => verifyX509Svid([l, old], bundles, NOW)).toThrow(
      expect.objectContaining({ code: 'ERR_X509_SVID_EXPIRED' }),
    )
  })

  it('honours pathLenConstraint on the root', async () => {
    const tightKey = await generateP256Key()
    const tight = buildCertificate({
      subjectKey: tightKey,
      commonName: 'tight',
      isCa: true,
      pathLen: 0,
      keyUsage: CA_KU,
      ...window(),
    })
    const i = buildCertificate({
      subjectKey: interKey,
      issuer: { cert: tight, key: tightKey },
      commonName: 'i',
      isCa: true,
      keyUsage: CA_KU,
      ...window(),
    })
    const l = leaf({ issuer: { cert: i, key: interKey } })
    const direct = leaf({ issuer: { cert: tight, key: tightKey } })
    const set = BundleSet.of({ x509: [X509Bundle.fromAuthorities(td, [tight])] })
    expect(verifyX509Svid([direct], set, NOW).path).toHaveLength(2)
    expect(() => verifyX509Svid([l, i], set, NOW)).toThrow(
      expect.objectContaining({ code: 'ERR_X509_SVID_UNTRUSTED' }),
    )
  })

  it('never uses another trust domain bundle, even one holding the signer', () => {
    const pooled = BundleSet.of({
      x509: [
        X509Bundle.fromAuthorities(td, []),
        X509Bundle.fromAuthorities(TrustDomain.parse('other.org'), [root]),
      ],
    })
    expect(() => verifyX509Svid([leaf()], pooled, NOW)).toThrow(
      expect.objectContaining({ code: 'ERR_X509_SVID_UNTRUSTED' }),
    )
  })

  it('stops trusting a CA once it is removed from the bundle', () => {
    const l = leaf()
    const dropped = BundleSet.of({ x509: [X509Bundle.fromAuthorities(td, [root]).withoutAuthority(root)] })
    expect(verifyX509Svid([l], bundles, NOW).id.path).toBe('/workload')
    expect(() => verifyX509Svid([l], dropped, NOW)).toThrow(
      expect.objectContaining({ code: 'ERR_X509_SVID_UNTRUSTED' }),
    )
  })
})
