import type { KeyObject } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { generateP256Key } from '../../../server/ca/key-generation.js'
import { buildCertificate, type CertSpec } from '../../../test/helpers/cert-builder.js'
import { TestCa } from '../../../test/helpers/test-ca.js'
import { type Certificate, KeyUsageBit } from './certificate.js'
import { encodePem } from './pem.js'
import { exportPkcs8Der } from './private-key.js'
import { parseX509Svid, parseX509SvidPem } from './x509-svid.js'

const NOW = Date.now()
const H = 3600_000
let ca: TestCa
let rootKey: KeyObject
let leafKey: KeyObject
let root: Certificate

function leaf(over: Partial<CertSpec> = {}): Certificate {
  return buildCertificate({
    subjectKey: leafKey,
    issuer: { cert: root, key: rootKey },
    commonName: 'leaf',
    keyUsage: [KeyUsageBit.digitalSignature],
    uris: ['spiffe://example.org/w'],
    notBeforeMs: NOW - H,
    notAfterMs: NOW + H,
    ...over,
  })
}

beforeAll(async () => {
  ca = await TestCa.create('example.org')
  ;[rootKey, leafKey] = await Promise.all([generateP256Key(), generateP256Key()])
  root = buildCertificate({
    subjectKey: rootKey,
    commonName: 'root',
    isCa: true,
    keyUsage: [KeyUsageBit.keyCertSign],
    notBeforeMs: NOW - H,
    notAfterMs: NOW + H,
  })
})

describe('parseX509Svid (go-spiffe ParseRaw rules, spec §7.B)', () => {
  it('parses an issued SVID from DER and from PEM, keeping the hint', async () => {
    const issued = await ca.issue('spiffe://example.org/ns/a')
    const der = parseX509Svid(
      issued.svid.certificates[0]?.der ?? Buffer.alloc(0),
      exportPkcs8Der(issued.svid.privateKey),
      'main',
    )
    expect(der.id.toString()).toBe('spiffe://example.org/ns/a')
    expect(der.hint).toBe('main')
    const pem = parseX509SvidPem(issued.certPem, issued.keyPem)
    expect(pem.id.equals(der.id)).toBe(true)
  })

  it('accepts a chain with a CA intermediate after the leaf', () => {
    const l = leaf()
    const svid = parseX509Svid(Buffer.concat([l.der, root.der]), exportPkcs8Der(leafKey))
    expect(svid.certificates).toHaveLength(2)
  })

  it.each([
    ['a leaf that is a CA', { isCa: true }, 'ERR_X509_SVID_INVALID'],
    ['a leaf without digitalSignature', { keyUsage: [KeyUsageBit.keyAgreement] }, 'ERR_X509_SVID_INVALID'],
    ['a leaf with a root ID', { uris: ['spiffe://example.org'] }, 'ERR_X509_SVID_INVALID'],
    ['a leaf with no URI SAN', { uris: [] }, 'ERR_X509_SVID_INVALID'],
  ])('refuses %s', (_n, over, code) => {
    expect(() => parseX509Svid(leaf(over as Partial<CertSpec>).der, exportPkcs8Der(leafKey))).toThrow(
      expect.objectContaining({ code }),
    )
  })

  it('refuses a non-CA intermediate', () => {
    const l = leaf()
    expect(() => parseX509Svid(Buffer.concat([l.der, l.der]), exportPkcs8Der(leafKey))).toThrow(
      expect.objectContaining({ code: 'ERR_X509_SVID_INVALID' }),
    )
  })

  it('refuses a key that does not match the leaf', () => {
    expect(() => parseX509Svid(leaf().der, exportPkcs8Der(rootKey))).toThrow(
      expect.objectContaining({ code: 'ERR_KEY_MISMATCH' }),
    )
  })

  it('refuses an empty chain, a SEC1 key and a PEM without a key', async () => {
    expect(() => parseX509Svid(Buffer.alloc(0), exportPkcs8Der(leafKey))).toThrow(
      expect.objectContaining({ code: 'ERR_X509_SVID_INVALID' }),
    )
    const sec1 = leafKey.export({ type: 'sec1', format: 'der' })
    expect(() => parseX509Svid(leaf().der, sec1)).toThrow(
      expect.objectContaining({ code: 'ERR_KEY_MALFORMED' }),
    )
    expect(() => parseX509SvidPem(encodePem('CERTIFICATE', leaf().der), '')).toThrow(
      expect.objectContaining({ code: 'ERR_PEM_MALFORMED' }),
    )
  })
})
