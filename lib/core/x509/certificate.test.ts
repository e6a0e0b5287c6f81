import { X509Certificate } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { Oid } from '../der/oid.js'
import { IdentityError } from '../errors.js'
import { type Certificate, KeyUsageBit, parseCertificate, parseCertificates } from './certificate.js'
import { decodePem } from './pem.js'
import { caCertPem, criticalExtCertPem, leafCertPem, rsaCertPem, v1CertPem } from './test-fixtures.js'

function codeOf(fn: () => unknown): string {
  try {
    fn()
    return 'none'
  } catch (err) {
    return err instanceof IdentityError ? err.code : 'foreign'
  }
}

const derOf = (pem: string): Buffer => decodePem(pem, 'CERTIFICATE')[0]!
const fixtures = {
  ca: caCertPem,
  leaf: leafCertPem,
  rsa: rsaCertPem,
  critical: criticalExtCertPem,
  v1: v1CertPem,
}

function sanText(cert: Certificate): string | undefined {
  const names = [...cert.uriSans.map((u) => `URI:${u}`), ...cert.dnsSans.map((d) => `DNS:${d}`)]
  return names.length > 0 ? names.join(', ') : undefined
}

describe('parseCertificate against node:crypto X509Certificate', () => {
  it.each(Object.entries(fixtures))('%s agrees on serial, validity, SANs, CA flag and key', (_name, pem) => {
    const der = derOf(pem)
    const cert = parseCertificate(der)
    const x509 = new X509Certificate(der)
    expect(cert.serialHex).toBe(x509.serialNumber.toLowerCase().replace(/^0+(?=.)/, ''))
    expect(cert.notBeforeMs).toBe(Date.parse(x509.validFrom))
    expect(cert.notAfterMs).toBe(Date.parse(x509.validTo))
    expect(sanText(cert)).toBe(x509.subjectAltName)
    expect(cert.basicConstraints?.isCa ?? false).toBe(x509.ca)
    expect(cert.publicKey.equals(x509.publicKey)).toBe(true)
    expect(cert.der.equals(x509.raw)).toBe(true)
    expect(cert.extKeyUsage).toEqual(x509.keyUsage)
  })
})

describe('parseCertificate against what openssl was asked for', () => {
  const ca = parseCertificate(derOf(caCertPem))
  const leaf = parseCertificate(derOf(leafCertPem))

  it('decodes the EC CA', () => {
    expect(ca.serialHex).toBe('1f2e3d4c5b6a79881726354453627180')
    expect(ca.basicConstraints).toEqual({ isCa: true, pathLen: 1, critical: true })
    expect(ca.keyUsage).toEqual({
      bits: new Set([KeyUsageBit.keyCertSign, KeyUsageBit.cRLSign]),
      critical: true,
    })
    expect(ca.uriSans).toEqual(['spiffe://example.org'])
    expect(ca.signatureAlgorithm).toBe(Oid.ecdsaWithSha256)
    expect(ca.subjectDer.equals(ca.issuerDer)).toBe(true)
    expect(ca.authorityKeyId).toBeUndefined()
    expect(ca.unhandledCriticalExtensions).toEqual([])
    expect(ca.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1')
  })

  it('decodes a GeneralizedTime notAfter (36500 days)', () => {
    expect(new Date(ca.notAfterMs).getUTCFullYear()).toBeGreaterThanOrEqual(2100)
  })

  it('decodes the EC leaf', () => {
    expect(leaf.serialHex).toBe('e1')
    expect(leaf.basicConstraints).toEqual({ isCa: false, critical: true })
    expect(leaf.keyUsage).toEqual({
      bits: new Set([KeyUsageBit.digitalSignature, KeyUsageBit.keyEncipherment, KeyUsageBit.keyAgreement]),
      critical: true,
    })
    expect(leaf.extKeyUsage).toEqual([Oid.serverAuth, Oid.clientAuth])
    expect(leaf.uriSans).toEqual(['spiffe://example.org/a'])
    expect(leaf.dnsSans).toEqual(['a.example.org'])
    expect(leaf.issuerDer.equals(ca.subjectDer)).toBe(true)
    expect(leaf.authorityKeyId?.equals(ca.subjectKeyId!)).toBe(true)
    expect(leaf.subjectKeyId?.length).toBe(20)
    expect(leaf.notAfterMs - leaf.notBeforeMs).toBe(3650 * 86_400_000)
  })

  it('decodes the RSA certificate', () => {
    const rsa = parseCertificate(derOf(rsaCertPem))
    expect(rsa.serialHex).toBe((4242).toString(16))
    expect(rsa.signatureAlgorithm).toBe(Oid.sha256WithRsaEncryption)
    expect(rsa.publicKey.asymmetricKeyType).toBe('rsa')
    expect(rsa.keyUsage?.bits).toEqual(new Set([KeyUsageBit.keyCertSign]))
  })

  it('lists critical extensions it does not handle, nameConstraints included', () => {
    const cert = parseCertificate(derOf(criticalExtCertPem))
    expect(cert.unhandledCriticalExtensions).toEqual([Oid.nameConstraints, '1.3.6.1.4.1.99999.1'])
  })

  it('decodes a version 1 certificate without extensions', () => {
    const cert = parseCertificate(derOf(v1CertPem))
    expect(cert).toMatchObject({ serialHex: '1', basicConstraints: undefined, keyUsage: undefined })
    expect(cert.extKeyUsage).toBeUndefined()
    expect(cert.uriSans).toEqual([])
    expect(cert.unhandledCriticalExtensions).toEqual([])
  })

  it('returns views of the input, not copies', () => {
    const der = derOf(leafCertPem)
    const cert = parseCertificate(der)
    expect(cert.der.buffer).toBe(der.buffer)
    expect(cert.tbs.buffer).toBe(der.buffer)
    expect(cert.der.subarray(4, 4 + cert.tbs.length).equals(cert.tbs)).toBe(true)
  })

  it('accepts a plain Uint8Array', () => {
    const der = derOf(leafCertPem)
    expect(parseCertificate(new Uint8Array(der)).serialHex).toBe('e1')
  })
})

describe('parseCertificates', () => {
  const leaf = derOf(leafCertPem)
  const ca = derOf(caCertPem)

  it('parses concatenated DER in order', () => {
    const certs = parseCertificates(Buffer.concat([leaf, ca]))
    expect(certs.map((c) => c.serialHex)).toEqual(['e1', '1f2e3d4c5b6a79881726354453627180'])
  })

  it('gives [] for empty input', () => {
    expect(parseCertificates(new Uint8Array(0))).toEqual([])
  })

  it.each([
    ['trailing garbage', () => Buffer.concat([leaf, Buffer.from([0x30])])],
    ['a truncated second certificate', () => Buffer.concat([leaf, ca.subarray(0, ca.length - 1)])],
    ['a non-SEQUENCE value', () => Buffer.concat([leaf, Buffer.from([0x04, 0x00])])],
  ])('refuses %s', (_name, input) => {
    expect(codeOf(() => parseCertificates(input()))).toBe('ERR_CERT_MALFORMED')
  })

  it('keeps the DER error as cause', () => {
    try {
      parseCertificate(leaf.subarray(0, 10))
    } catch (err) {
      expect((err as IdentityError).code).toBe('ERR_CERT_MALFORMED')
      expect(((err as IdentityError).cause as IdentityError).code).toBe('ERR_DER_MALFORMED')
    }
    expect.assertions(2)
  })
})
