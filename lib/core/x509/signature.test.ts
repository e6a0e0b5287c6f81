import { constants, generateKeyPairSync, type KeyObject, sign } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { Oid } from '../der/oid.js'
import { parseCertificate } from './certificate.js'
import { decodePem } from './pem.js'
import { verifyCertificateSignature, verifySignature } from './signature.js'
import { caCertPem, criticalExtCertPem, leafCertPem, rsaCertPem } from './test-fixtures.js'

const cert = (pem: string) => parseCertificate(decodePem(pem)[0]!)
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const ec384 = generateKeyPairSync('ec', { namedCurve: 'P-384' })
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
const data = Buffer.from('to be signed')

function ecdsa(hash: string, key: KeyObject): Buffer {
  return sign(hash, data, { key, dsaEncoding: 'der' })
}

function pkcs1(hash: string, key: KeyObject): Buffer {
  return sign(hash, data, { key, padding: constants.RSA_PKCS1_PADDING })
}

describe('verifyCertificateSignature', () => {
  const ca = cert(caCertPem)
  const leaf = cert(leafCertPem)

  it('verifies the leaf with the CA key', () => {
    expect(verifyCertificateSignature(leaf, ca.publicKey)).toBe(true)
  })

  it.each([
    ['another EC key', () => cert(criticalExtCertPem).publicKey],
    ['its own key', () => leaf.publicKey],
    ['an RSA key', () => cert(rsaCertPem).publicKey],
  ])('does not verify the leaf with %s', (_name, key) => {
    expect(verifyCertificateSignature(leaf, key())).toBe(false)
  })

  it('does not verify a changed TBSCertificate', () => {
    const tbs = Buffer.from(leaf.tbs)
    tbs[tbs.length - 1] = tbs[tbs.length - 1]! ^ 1
    expect(verifyCertificateSignature({ ...leaf, tbs }, ca.publicKey)).toBe(false)
  })

  it('verifies a self-signed RSA certificate', () => {
    const self = cert(rsaCertPem)
    expect(verifyCertificateSignature(self, self.publicKey)).toBe(true)
  })
})

describe('verifySignature', () => {
  it.each([
    [Oid.ecdsaWithSha256, ec.publicKey, () => ecdsa('sha256', ec.privateKey)],
    [Oid.ecdsaWithSha384, ec.publicKey, () => ecdsa('sha384', ec.privateKey)],
    [Oid.ecdsaWithSha512, ec.publicKey, () => ecdsa('sha512', ec.privateKey)],
    [Oid.ecdsaWithSha384, ec384.publicKey, () => ecdsa('sha384', ec384.privateKey)],
    [Oid.sha256WithRsaEncryption, rsa.publicKey, () => pkcs1('sha256', rsa.privateKey)],
    [Oid.sha384WithRsaEncryption, rsa.publicKey, () => pkcs1('sha384', rsa.privateKey)],
    [Oid.sha512WithRsaEncryption, rsa.publicKey, () => pkcs1('sha512', rsa.privateKey)],
  ])('verifies %s', (algorithm, key, signature) => {
    expect(verifySignature(algorithm, key, data, signature())).toBe(true)
    expect(verifySignature(algorithm, key, Buffer.from('something else'), signature())).toBe(false)
  })

  it.each([
    [
      'a digest other than the one signed',
      Oid.ecdsaWithSha384,
      ec.publicKey,
      () => ecdsa('sha256', ec.privateKey),
    ],
    [
      'an EC key under an RSA algorithm',
      Oid.sha256WithRsaEncryption,
      ec.publicKey,
      () => ecdsa('sha256', ec.privateKey),
    ],
    [
      'an RSA key under an ECDSA algorithm',
      Oid.ecdsaWithSha256,
      rsa.publicKey,
      () => pkcs1('sha256', rsa.privateKey),
    ],
    ['RSASSA-PSS', Oid.rsassaPss, rsa.publicKey, () => pkcs1('sha256', rsa.privateKey)],
    ['an unknown algorithm', '1.2.3.4', ec.publicKey, () => ecdsa('sha256', ec.privateKey)],
    [
      'a garbage ECDSA signature',
      Oid.ecdsaWithSha256,
      ec.publicKey,
      () => Buffer.from([0x30, 0x03, 0x02, 0x01]),
    ],
    ['an empty signature', Oid.sha256WithRsaEncryption, rsa.publicKey, () => Buffer.alloc(0)],
    ['a short RSA signature', Oid.sha256WithRsaEncryption, rsa.publicKey, () => Buffer.alloc(7, 1)],
  ])('returns false, without throwing, for %s', (_name, algorithm, key, signature) => {
    expect(verifySignature(algorithm, key, data, signature())).toBe(false)
  })
})
