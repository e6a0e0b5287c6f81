import { describe, expect, it } from 'vitest'
import {
  bitString,
  boolean,
  explicit,
  implicitPrimitive,
  namedBits,
  nullValue,
  octetString,
  oid,
  sequence,
  set,
  smallInteger,
  Tag,
  tlv,
  unsignedInteger,
  utf8String,
  x509Time,
} from '../der/der-writer.js'
import { Oid } from '../der/oid.js'
import { IdentityError } from '../errors.js'
import { parseCertificate } from './certificate.js'
import { decodePem } from './pem.js'
import { leafCertPem } from './test-fixtures.js'

function codeOf(fn: () => unknown): string {
  try {
    fn()
    return 'none'
  } catch (err) {
    return err instanceof IdentityError ? err.code : 'foreign'
  }
}

const SPKI = parseCertificate(decodePem(leafCertPem)[0]!).spkiDer
const ECDSA_SHA256 = sequence(oid(Oid.ecdsaWithSha256))
const NAME = sequence(set(sequence(oid(Oid.commonName), utf8String('t'))))
const VALIDITY = sequence(x509Time(Date.UTC(2025, 0, 1)), x509Time(Date.UTC(2026, 0, 1)))

/** What a test may bend; everything else is a plain v3 certificate. */
interface Spec {
  /** `null` leaves the version out (v1). */
  readonly version?: Buffer | null
  readonly serial?: Buffer
  readonly innerAlgorithm?: Buffer
  readonly outerAlgorithm?: Buffer
  readonly issuer?: Buffer
  readonly validity?: Buffer
  readonly spki?: Buffer
  /** Fields between subjectPublicKeyInfo and the extensions (unique IDs). */
  readonly afterSpki?: ReadonlyArray<Buffer>
  readonly extensions?: ReadonlyArray<Buffer>
  readonly afterSignature?: ReadonlyArray<Buffer>
}

function build(spec: Spec = {}): Buffer {
  const version = spec.version === undefined ? explicit(0, smallInteger(2)) : spec.version
  const tbs = sequence(
    ...(version ? [version] : []),
    spec.serial ?? smallInteger(1),
    spec.innerAlgorithm ?? ECDSA_SHA256,
    spec.issuer ?? NAME,
    spec.validity ?? VALIDITY,
    NAME,
    spec.spki ?? SPKI,
    ...(spec.afterSpki ?? []),
    ...(spec.extensions ? [explicit(3, sequence(...spec.extensions))] : []),
  )
  const signature = bitString(Buffer.from([1, 2, 3]))
  return sequence(tbs, spec.outerAlgorithm ?? ECDSA_SHA256, signature, ...(spec.afterSignature ?? []))
}

function ext(id: string, value: Buffer, critical?: boolean): Buffer {
  return sequence(oid(id), ...(critical === undefined ? [] : [boolean(critical)]), octetString(value))
}

const san = (...names: Buffer[]): Buffer => ext(Oid.subjectAltName, sequence(...names))
const uri = (text: string | Buffer): Buffer => implicitPrimitive(6, Buffer.from(text))
const dns = (text: string | Buffer): Buffer => implicitPrimitive(2, Buffer.from(text))
const criticalAki = ext(Oid.authorityKeyIdentifier, sequence(implicitPrimitive(0, Buffer.from([1]))), true)

describe('parseCertificate rules', () => {
  it.each<[string, Spec, string]>([
    ['a plain v3 certificate', {}, 'none'],
    ['v3 with an empty extension list', { extensions: [] }, 'none'],
    ['v1 (version omitted) without extensions', { version: null }, 'none'],
    ['v1 written out explicitly', { version: explicit(0, smallInteger(0)) }, 'none'],
    ['v1 with extensions', { version: null, extensions: [san(uri('spiffe://td/a'))] }, 'ERR_CERT_MALFORMED'],
    [
      'v1 with a unique ID',
      { version: null, afterSpki: [implicitPrimitive(1, Buffer.from([0]))] },
      'ERR_CERT_MALFORMED',
    ],
    ['v2', { version: explicit(0, smallInteger(1)) }, 'ERR_CERT_MALFORMED'],
    ['version 4', { version: explicit(0, smallInteger(3)) }, 'ERR_CERT_MALFORMED'],
    [
      'v3 with unique IDs',
      { afterSpki: [implicitPrimitive(1, Buffer.from([0])), implicitPrimitive(2, Buffer.from([0]))] },
      'none',
    ],
    ['serial 0', { serial: smallInteger(0) }, 'none'],
    ['a 20-octet serial with the high bit set', { serial: unsignedInteger(Buffer.alloc(20, 0xff)) }, 'none'],
    ['a 21-octet serial', { serial: unsignedInteger(Buffer.alloc(21, 0x11)) }, 'ERR_CERT_MALFORMED'],
    ['a negative serial', { serial: tlv(Tag.INTEGER, Buffer.from([0x80, 0x01])) }, 'ERR_CERT_MALFORMED'],
    ['a non-minimal serial', { serial: tlv(Tag.INTEGER, Buffer.from([0x00, 0x01])) }, 'ERR_CERT_MALFORMED'],
    [
      'different inner and outer algorithms',
      { outerAlgorithm: sequence(oid(Oid.ecdsaWithSha384)) },
      'ERR_CERT_MALFORMED',
    ],
    [
      'outer algorithm with parameters the inner lacks',
      { outerAlgorithm: sequence(oid(Oid.ecdsaWithSha256), nullValue()) },
      'ERR_CERT_MALFORMED',
    ],
    ['a field after the signature', { afterSignature: [nullValue()] }, 'ERR_CERT_MALFORMED'],
    ['an empty RDN', { issuer: sequence(set()) }, 'ERR_CERT_MALFORMED'],
    [
      'three validity times',
      { validity: sequence(x509Time(0), x509Time(1000), x509Time(2000)) },
      'ERR_CERT_MALFORMED',
    ],
    [
      'a validity time with an offset',
      { validity: sequence(tlv(Tag.UTC_TIME, Buffer.from('250101000000+0100')), x509Time(0)) },
      'ERR_CERT_MALFORMED',
    ],
    [
      'a duplicate extension',
      { extensions: [ext(Oid.keyUsage, namedBits([0])), ext(Oid.keyUsage, namedBits([0]))] },
      'ERR_CERT_MALFORMED',
    ],
    ['a critical authorityKeyIdentifier', { extensions: [criticalAki] }, 'ERR_CERT_MALFORMED'],
    [
      'criticality written as 0x01',
      {
        extensions: [
          sequence(oid(Oid.keyUsage), tlv(Tag.BOOLEAN, Buffer.from([1])), octetString(namedBits([0]))),
        ],
      },
      'ERR_CERT_MALFORMED',
    ],
    ['criticality FALSE written out', { extensions: [ext(Oid.keyUsage, namedBits([0]), false)] }, 'none'],
    [
      'an extnValue with trailing bytes',
      { extensions: [ext(Oid.keyUsage, Buffer.concat([namedBits([0]), Buffer.from([0])]))] },
      'ERR_CERT_MALFORMED',
    ],
    [
      'an unknown extension with non-DER content',
      { extensions: [ext('1.2.3.4', Buffer.from('not DER'))] },
      'none',
    ],
    [
      'a known extension with non-DER content',
      { extensions: [ext(Oid.extKeyUsage, Buffer.from('not DER'))] },
      'ERR_CERT_MALFORMED',
    ],
    ['an unknown extension with DER content', { extensions: [ext('1.2.3.4', nullValue())] }, 'none'],
    [
      'a URI SAN that is not IA5',
      { extensions: [san(uri(Buffer.from([0x61, 0xe9])))] },
      'ERR_CERT_MALFORMED',
    ],
    [
      'a URI SAN whose host has an empty label',
      { extensions: [san(uri('spiffe://a..b/x'))] },
      'ERR_CERT_MALFORMED',
    ],
    [
      'a URI SAN with a control character',
      { extensions: [san(uri('spiffe://td/a\nb'))] },
      'ERR_CERT_MALFORMED',
    ],
    ['a DNS SAN that is not IA5', { extensions: [san(dns(Buffer.from([0xff])))] }, 'ERR_CERT_MALFORMED'],
    [
      'an IP SAN of 5 octets',
      { extensions: [san(implicitPrimitive(7, Buffer.alloc(5)))] },
      'ERR_CERT_MALFORMED',
    ],
    ['an IPv6 SAN', { extensions: [san(implicitPrimitive(7, Buffer.alloc(16)))] }, 'none'],
    [
      'a basicConstraints with an extra field',
      { extensions: [ext(Oid.basicConstraints, sequence(boolean(true), smallInteger(1), nullValue()))] },
      'ERR_CERT_MALFORMED',
    ],
    [
      'a negative pathLen',
      {
        extensions: [
          ext(Oid.basicConstraints, sequence(boolean(true), tlv(Tag.INTEGER, Buffer.from([0xff])))),
        ],
      },
      'ERR_CERT_MALFORMED',
    ],
    [
      'an AKI with an unknown field',
      { extensions: [ext(Oid.authorityKeyIdentifier, sequence(implicitPrimitive(5, Buffer.from([1]))))] },
      'ERR_CERT_MALFORMED',
    ],
  ])('$0 gives $2', (_name, spec, code) => {
    expect(codeOf(() => parseCertificate(build(spec)))).toBe(code)
  })
})

describe('parseCertificate extension decoding', () => {
  const parse = (...extensions: Buffer[]) => parseCertificate(build({ extensions }))

  it('reads keyUsage bits across octets', () => {
    expect(parse(ext(Oid.keyUsage, namedBits([0, 5, 8]), true)).keyUsage).toEqual({
      bits: new Set([0, 5, 8]),
      critical: true,
    })
  })

  it.each([
    [sequence(), { isCa: false, critical: false }],
    [sequence(boolean(false)), { isCa: false, critical: false }],
    [sequence(boolean(true)), { isCa: true, critical: false }],
    [sequence(boolean(true), smallInteger(0)), { isCa: true, pathLen: 0, critical: false }],
    [sequence(smallInteger(2)), { isCa: false, pathLen: 2, critical: false }],
  ])('reads basicConstraints %#', (value, expected) => {
    expect(parse(ext(Oid.basicConstraints, value)).basicConstraints).toEqual(expected)
  })

  it('reads the AKI keyIdentifier and ignores its other fields', () => {
    const aki = sequence(implicitPrimitive(0, Buffer.from([9, 8])), implicitPrimitive(2, Buffer.from([1])))
    expect(parse(ext(Oid.authorityKeyIdentifier, aki)).authorityKeyId).toEqual(Buffer.from([9, 8]))
    expect(parse(ext(Oid.authorityKeyIdentifier, sequence())).authorityKeyId).toBeUndefined()
  })

  it('keeps URI and DNS SANs in order and skips other name kinds', () => {
    const otherName = explicit(0, oid('1.2.3'), explicit(0, utf8String('x')))
    const directoryName = explicit(4, NAME)
    const email = implicitPrimitive(1, Buffer.from('a@b'))
    const cert = parse(
      san(
        dns('b.org'),
        otherName,
        uri('spiffe://td/x'),
        directoryName,
        email,
        uri('https://h/y'),
        dns('a.org'),
      ),
    )
    expect(cert.uriSans).toEqual(['spiffe://td/x', 'https://h/y'])
    expect(cert.dnsSans).toEqual(['b.org', 'a.org'])
  })

  it('lists only critical unknown extensions', () => {
    const cert = parse(
      ext(Oid.nameConstraints, sequence(), true),
      ext(Oid.certificatePolicies, sequence(), false),
      ext(Oid.crlDistributionPoints, sequence(), true),
      ext('1.2.3.4', nullValue(), true),
      ext(Oid.keyUsage, namedBits([5]), true),
    )
    expect(cert.unhandledCriticalExtensions).toEqual([
      Oid.nameConstraints,
      Oid.crlDistributionPoints,
      '1.2.3.4',
    ])
  })

  it('refuses a point that is not on the curve lazily, with the certificate code', () => {
    const point = Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 1)])
    const spki = sequence(sequence(oid(Oid.ecPublicKey), oid(Oid.prime256v1)), bitString(point))
    const cert = parseCertificate(build({ spki }))
    expect(codeOf(() => cert.publicKey)).toBe('ERR_CERT_MALFORMED')
  })
})
