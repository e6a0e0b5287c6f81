import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { buildCertificate } from '../../test/helpers/cert-builder.js'
import { TestCa } from '../../test/helpers/test-ca.js'
import { BundleSet } from '../core/bundle/bundle-source.js'
import { isIdentityError } from '../core/errors.js'
import { type Certificate, KeyUsageBit } from '../core/x509/certificate.js'
import { authorizeAny } from './authorizer.js'
import { type PeerCertificateLike, peerChainOf, verifyPeerCertificate } from './x509-peer.js'

const NOW = Date.now()
const HOUR = 3_600_000

interface NodeLikeCert {
  raw: Buffer
  fingerprint256: string
  issuerCertificate?: NodeLikeCert
}

/** What Node's getPeerCertificate(true) builds: leaf first, issuers linked, a root linked to itself. */
function nodeChain(...certs: Certificate[]): NodeLikeCert {
  const nodes = certs.map((c) => ({ raw: c.der, fingerprint256: new X509Certificate(c.der).fingerprint256 }))
  nodes.forEach((n, i) => {
    const issuer = nodes[i + 1]
    if (issuer) (n as NodeLikeCert).issuerCertificate = issuer
  })
  const last = nodes[nodes.length - 1] as NodeLikeCert
  if (certs[certs.length - 1]?.subjectDer.equals(certs[certs.length - 1]!.issuerDer))
    last.issuerCertificate = last
  return nodes[0] as NodeLikeCert
}

function codeOf(fn: () => unknown): string {
  try {
    fn()
    return 'ok'
  } catch (err) {
    return isIdentityError(err) ? err.code : String(err)
  }
}

function intermediateAndLeaf(issuer: TestCa, id: string): { intermediate: Certificate; leaf: Certificate } {
  const caKey = createPrivateKey({ key: issuer.ca.exportKey(), format: 'der', type: 'pkcs8' })
  const interKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
  const intermediate = buildCertificate({
    subjectKey: interKey,
    issuer: { cert: issuer.ca.certificate, key: caKey },
    commonName: 'intermediate',
    isCa: true,
    keyUsage: [KeyUsageBit.keyCertSign, KeyUsageBit.cRLSign],
    uris: [`spiffe://${issuer.ca.trustDomain.name}`],
    notBeforeMs: NOW - HOUR,
    notAfterMs: NOW + HOUR,
  })
  const leaf = buildCertificate({
    subjectKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
    issuer: { cert: intermediate, key: interKey },
    commonName: 'leaf',
    keyUsage: [KeyUsageBit.digitalSignature],
    eku: true,
    uris: [id],
    notBeforeMs: NOW - HOUR,
    notAfterMs: NOW + HOUR,
  })
  return { intermediate, leaf }
}

let ca: TestCa
let other: TestCa
let bundles: BundleSet
let intermediate: Certificate
let leaf: Certificate

beforeAll(async () => {
  ;[ca, other] = await Promise.all([TestCa.create('example.org'), TestCa.create('other.org')])
  bundles = BundleSet.of({ x509: [ca.bundle, other.bundle] })
  ;({ intermediate, leaf } = intermediateAndLeaf(ca, 'spiffe://example.org/behind-intermediate'))
})

const verify = (cert: PeerCertificateLike | null, localCaFingerprints?: ReadonlySet<string>) =>
  verifyPeerCertificate(cert, bundles, authorizeAny(), { nowMs: NOW, cache: false, localCaFingerprints })

describe('peerChainOf walks what Node hands over', () => {
  it('leaf first, intermediates the peer sent, and never the self-issued root at the end', () => {
    const chain = peerChainOf(nodeChain(leaf, intermediate, ca.ca.certificate))
    expect(chain).toEqual([leaf.der, intermediate.der])
  })

  it('stops at a certificate Node added from the local store', () => {
    const local = new Set([new X509Certificate(intermediate.der).fingerprint256])
    expect(peerChainOf(nodeChain(leaf, intermediate, ca.ca.certificate), local)).toEqual([leaf.der])
  })

  it('stops on a loop', () => {
    const a: NodeLikeCert = { raw: leaf.der, fingerprint256: 'A' }
    const b: NodeLikeCert = { raw: intermediate.der, fingerprint256: 'B', issuerCertificate: a }
    a.issuerCertificate = b
    expect(peerChainOf(a)).toEqual([leaf.der, intermediate.der])
  })

  it.each<[string, PeerCertificateLike | null]>([
    ['no certificate (Node answers {})', {}],
    ['null', null],
    ['an empty raw', { raw: Buffer.alloc(0) }],
  ])('refuses %s', (_name, cert) => {
    expect(codeOf(() => peerChainOf(cert))).toBe('ERR_X509_SVID_INVALID')
  })

  it('refuses a walk of more than 10 certificates', () => {
    let cert: NodeLikeCert | undefined
    for (let i = 0; i < 12; i++)
      cert = { raw: Buffer.from([i + 1]), fingerprint256: String(i), issuerCertificate: cert }
    expect(codeOf(() => peerChainOf(cert))).toBe('ERR_X509_SVID_INVALID')
  })
})

describe('verifyPeerCertificate', () => {
  it('verifies a leaf through the intermediate the peer sent', () => {
    const peer = verify(nodeChain(leaf, intermediate, ca.ca.certificate))
    expect(peer.id.toString()).toBe('spiffe://example.org/behind-intermediate')
    expect(peer.path.map((c) => c.der)).toEqual([leaf.der, intermediate.der, ca.ca.certificate.der])
  })

  it('refuses the leaf alone: an intermediate is only taken from the peer', () => {
    expect(codeOf(() => verify(nodeChain(leaf)))).toBe('ERR_X509_SVID_UNTRUSTED')
  })

  it("refuses an example.org leaf under an intermediate of other.org's CA", () => {
    const foreign = intermediateAndLeaf(other, 'spiffe://example.org/x')
    expect(codeOf(() => verify(nodeChain(foreign.leaf, foreign.intermediate, other.ca.certificate)))).toBe(
      'ERR_X509_SVID_UNTRUSTED',
    )
  })

  it('refuses a connection without a peer certificate', () => {
    expect(codeOf(() => verify({}))).toBe('ERR_X509_SVID_INVALID')
  })
})
