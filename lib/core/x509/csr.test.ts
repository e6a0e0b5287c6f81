import { constants, generateKeyPairSync, sign } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { bitString, explicit, oid, sequence, set, smallInteger } from '../der/der-writer.js'
import { Oid } from '../der/oid.js'
import { IdentityError } from '../errors.js'
import { createCsr, parseCsr, verifyCsrSignature } from './csr.js'
import { decodePem } from './pem.js'
import { publicKeyDer } from './private-key.js'
import { leafCsrPem } from './test-fixtures.js'

function codeOf(fn: () => unknown): string {
  try {
    fn()
    return 'none'
  } catch (err) {
    return err instanceof IdentityError ? err.code : 'foreign'
  }
}

const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' })
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
const sans = { uriSans: ['spiffe://example.org/workload'], dnsSans: ['a.example.org', 'b.example.org'] }

describe('createCsr → parseCsr → verifyCsrSignature', () => {
  it.each([
    ['P-256', p256, Oid.ecdsaWithSha256],
    ['P-384', p384, Oid.ecdsaWithSha384],
  ])('round-trips a %s request', (_name, pair, algorithm) => {
    const csr = parseCsr(createCsr(pair.privateKey, sans))
    expect(csr.signatureAlgorithm).toBe(algorithm)
    expect(csr.uriSans).toEqual(sans.uriSans)
    expect(csr.dnsSans).toEqual(sans.dnsSans)
    expect(csr.spkiDer.equals(publicKeyDer(pair.publicKey))).toBe(true)
    expect(csr.publicKey.equals(pair.publicKey)).toBe(true)
    expect(csr.subjectDer.equals(sequence())).toBe(true)
    expect(() => verifyCsrSignature(csr)).not.toThrow()
  })

  it('creates a request without SANs', () => {
    const csr = parseCsr(createCsr(p256.privateKey))
    expect(csr.uriSans).toEqual([])
    expect(csr.dnsSans).toEqual([])
    verifyCsrSignature(csr)
  })

  it('fails verification when a bit of the signed part flips', () => {
    const der = createCsr(p256.privateKey, sans)
    const at = der.indexOf('workload')
    der[at] = der[at]! ^ 0x02
    const csr = parseCsr(der)
    expect(csr.uriSans).toEqual(['spiffe://example.org/uorkload'])
    expect(codeOf(() => verifyCsrSignature(csr))).toBe('ERR_CSR_SIGNATURE_INVALID')
  })

  it('never verifies with any single bit of the request info flipped', () => {
    const der = createCsr(p256.privateKey, sans)
    const info = parseCsr(der).infoDer
    const start = der.indexOf(info)
    const codes = new Set<string>()
    for (let bit = 0; bit < info.length * 8; bit += 3) {
      const copy = Buffer.from(der)
      copy[start + (bit >> 3)] = copy[start + (bit >> 3)]! ^ (0x80 >> (bit & 7))
      codes.add(codeOf(() => verifyCsrSignature(parseCsr(copy))))
    }
    expect([...codes].sort()).toEqual(['ERR_CSR_MALFORMED', 'ERR_CSR_SIGNATURE_INVALID'])
  })

  it('fails verification with another key’s signature', () => {
    const csr = parseCsr(createCsr(p256.privateKey))
    const forged = {
      ...csr,
      publicKey: csr.publicKey,
      signature: parseCsr(createCsr(p384.privateKey)).signature,
    }
    expect(codeOf(() => verifyCsrSignature(forged))).toBe('ERR_CSR_SIGNATURE_INVALID')
  })
})

describe('parseCsr', () => {
  it('reads a request made by openssl', () => {
    const csr = parseCsr(decodePem(leafCsrPem, 'CERTIFICATE REQUEST')[0]!)
    expect(csr.uriSans).toEqual(['spiffe://example.org/a'])
    expect(csr.dnsSans).toEqual(['a.example.org'])
    expect(csr.signatureAlgorithm).toBe(Oid.ecdsaWithSha256)
    expect(csr.subjectDer.length).toBeGreaterThan(2)
    verifyCsrSignature(csr)
  })

  it('verifies an RSA PKCS#1 v1.5 request', () => {
    const info = sequence(smallInteger(0), sequence(), publicKeyDer(rsa.publicKey), explicit(0))
    const signature = sign('sha256', info, { key: rsa.privateKey, padding: constants.RSA_PKCS1_PADDING })
    const csr = parseCsr(sequence(info, sequence(oid(Oid.sha256WithRsaEncryption)), bitString(signature)))
    expect(csr.publicKey.asymmetricKeyType).toBe('rsa')
    verifyCsrSignature(csr)
  })

  const spki = publicKeyDer(p256.publicKey)
  const signed = (info: Buffer) =>
    sequence(info, sequence(oid(Oid.ecdsaWithSha256)), bitString(Buffer.from([1])))
  const extensionRequest = sequence(oid(Oid.extensionRequest), set(sequence()))
  it.each([
    ['no attributes field', signed(sequence(smallInteger(0), sequence(), spki)), 'none'],
    ['version 2', signed(sequence(smallInteger(1), sequence(), spki, explicit(0))), 'ERR_CSR_MALFORMED'],
    [
      'a field after the attributes',
      signed(sequence(smallInteger(0), sequence(), spki, explicit(0), explicit(1))),
      'ERR_CSR_MALFORMED',
    ],
    [
      'attributes under the wrong tag',
      signed(sequence(smallInteger(0), sequence(), spki, set())),
      'ERR_CSR_MALFORMED',
    ],
    [
      'two extensionRequest attributes',
      signed(sequence(smallInteger(0), sequence(), spki, explicit(0, extensionRequest, extensionRequest))),
      'ERR_CSR_MALFORMED',
    ],
    [
      'an extensionRequest with two values',
      signed(
        sequence(
          smallInteger(0),
          sequence(),
          spki,
          explicit(0, sequence(oid(Oid.extensionRequest), set(sequence(), sequence()))),
        ),
      ),
      'ERR_CSR_MALFORMED',
    ],
    [
      'an unknown attribute',
      signed(sequence(smallInteger(0), sequence(), spki, explicit(0, sequence(oid('1.2.3'), set())))),
      'none',
    ],
    [
      'a field after the signature',
      Buffer.concat([
        sequence(
          sequence(smallInteger(0), sequence(), spki),
          sequence(oid(Oid.ecdsaWithSha256)),
          bitString(Buffer.from([1])),
          smallInteger(0),
        ),
      ]),
      'ERR_CSR_MALFORMED',
    ],
    [
      'trailing bytes',
      Buffer.concat([signed(sequence(smallInteger(0), sequence(), spki)), Buffer.from([0])]),
      'ERR_CSR_MALFORMED',
    ],
    ['nothing', Buffer.alloc(0), 'ERR_CSR_MALFORMED'],
  ])('%s gives %s', (_name, der, code) => {
    expect(codeOf(() => parseCsr(der))).toBe(code)
  })
})

describe('createCsr refusals', () => {
  it.each([
    ['an RSA key', () => createCsr(rsa.privateKey)],
    ['a public key', () => createCsr(p256.publicKey)],
    ['a P-521 key', () => createCsr(generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey)],
  ])('refuses %s with ERR_KEY_MALFORMED', (_name, create) => {
    expect(codeOf(create)).toBe('ERR_KEY_MALFORMED')
  })

  it.each([
    ['a non-ASCII URI', { uriSans: ['spiffe://example.org/café'] }],
    ['a URI Go cannot parse', { uriSans: ['spiffe://a..b/x'] }],
    ['a non-ASCII DNS name', { dnsSans: ['bücher.example'] }],
  ])('refuses %s with ERR_CSR_MALFORMED', (_name, options) => {
    expect(codeOf(() => createCsr(p256.privateKey, options))).toBe('ERR_CSR_MALFORMED')
  })
})
