import { createSecretKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { octetString, oid, sequence, smallInteger } from '../der/der-writer.js'
import { Oid } from '../der/oid.js'
import { IdentityError } from '../errors.js'
import { parseCertificate } from './certificate.js'
import { decodePem } from './pem.js'
import { exportPkcs8Der, keyMatchesCertificate, parsePrivateKey, publicKeyDer } from './private-key.js'
import { caCertPem, caKeyPem, leafCertPem, leafKeyPem } from './test-fixtures.js'

function codeOf(fn: () => unknown): string {
  try {
    fn()
    return 'none'
  } catch (err) {
    return err instanceof IdentityError ? err.code : 'foreign'
  }
}

const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey
const p521 = generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
const rsaPss = generateKeyPairSync('rsa-pss', { modulusLength: 2048 }).privateKey
const ed25519 = generateKeyPairSync('ed25519').privateKey
const pkcs8 = (key: KeyObject): Buffer => key.export({ format: 'der', type: 'pkcs8' })
const leafCert = parseCertificate(decodePem(leafCertPem)[0]!)
const caCert = parseCertificate(decodePem(caCertPem)[0]!)
const leafKey = parsePrivateKey(decodePem(leafKeyPem, 'PRIVATE KEY')[0]!)

describe('parsePrivateKey', () => {
  it.each([
    ['EC P-256', p256, 'ec'],
    ['EC P-384', p384, 'ec'],
    ['RSA', rsa, 'rsa'],
  ])('parses a PKCS#8 %s key', (_name, key, type) => {
    const parsed = parsePrivateKey(pkcs8(key))
    expect(parsed.type).toBe('private')
    expect(parsed.asymmetricKeyType).toBe(type)
    expect(parsed.equals(key)).toBe(true)
  })

  it.each([
    ['a SEC1 EC key', () => p256.export({ format: 'der', type: 'sec1' })],
    ['a PKCS#1 RSA key', () => rsa.export({ format: 'der', type: 'pkcs1' })],
    [
      'an encrypted PKCS#8 key',
      () => p256.export({ format: 'der', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'x' }),
    ],
    ['a P-521 key', () => pkcs8(p521)],
    ['an Ed25519 key', () => pkcs8(ed25519)],
    ['an RSA-PSS key', () => pkcs8(rsaPss)],
    ['trailing bytes', () => Buffer.concat([pkcs8(p256), Buffer.from([0])])],
    ['a truncated key', () => pkcs8(p256).subarray(0, 40)],
    ['a PEM text', () => Buffer.from(leafKeyPem)],
    ['an SPKI public key', () => publicKeyDer(p256)],
    ['nothing', () => Buffer.alloc(0)],
  ])('refuses %s', (_name, der) => {
    expect(codeOf(() => parsePrivateKey(der()))).toBe('ERR_KEY_MALFORMED')
  })

  it('refuses a well-formed PKCS#8 wrapper around something that is not a key', () => {
    const algorithm = sequence(oid(Oid.ecPublicKey), oid(Oid.prime256v1))
    const der = sequence(smallInteger(0), algorithm, octetString(Buffer.from('not a key')))
    expect(codeOf(() => parsePrivateKey(der))).toBe('ERR_KEY_MALFORMED')
  })
})

describe('exportPkcs8Der / publicKeyDer', () => {
  it('round-trips through PKCS#8 DER', () => {
    const der = exportPkcs8Der(p384)
    expect(parsePrivateKey(der).equals(p384)).toBe(true)
  })

  it('refuses to export a public key as PKCS#8', () => {
    expect(codeOf(() => exportPkcs8Der(leafCert.publicKey))).toBe('ERR_KEY_MALFORMED')
  })

  it('gives the same SPKI for a private key, its public key and its certificate', () => {
    expect(publicKeyDer(leafKey).equals(leafCert.spkiDer)).toBe(true)
    expect(publicKeyDer(leafCert.publicKey).equals(leafCert.spkiDer)).toBe(true)
  })

  it('refuses a secret key', () => {
    expect(codeOf(() => publicKeyDer(createSecretKey(Buffer.alloc(16))))).toBe('ERR_KEY_MALFORMED')
  })
})

describe('keyMatchesCertificate', () => {
  it.each([
    ['the leaf key and the leaf', () => leafKey, leafCert, true],
    ['the CA key and the CA', () => parsePrivateKey(decodePem(caKeyPem)[0]!), caCert, true],
    ['the leaf key and the CA', () => leafKey, caCert, false],
    ['another key and the leaf', () => p256, leafCert, false],
    ['an RSA key and the leaf', () => rsa, leafCert, false],
    ['the leaf public key and the leaf', () => leafCert.publicKey, leafCert, false],
  ])('%s gives %s', (_name, key, cert, expected) => {
    expect(keyMatchesCertificate(key(), cert)).toBe(expected)
  })
})
