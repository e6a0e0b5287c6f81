import { generateKeyPairSync } from 'node:crypto'
import fc from 'fast-check'
import { describe, it } from 'vitest'
import {
  readBitString,
  readBoolean,
  readChildren,
  readEncapsulated,
  readOctetAlignedBitString,
  readOid,
  readOne,
  readSmallInteger,
  readUnsignedInteger,
  type Tlv,
} from '../der/der-reader.js'
import { readIa5String, readPrintableString, readTime, readUtf8String } from '../der/der-text.js'
import { Tag } from '../der/der-writer.js'
import { type ErrorCode, IdentityError } from '../errors.js'
import { parseCertificate, parseCertificates } from './certificate.js'
import { createCsr, parseCsr, verifyCsrSignature } from './csr.js'
import { decodePem } from './pem.js'
import { parsePrivateKey } from './private-key.js'
import * as fixtures from './test-fixtures.js'

const RUNS = 2500

/** Runs `fn`; it must return or throw an IdentityError with one of `codes`. */
function returnsOrThrows(fn: () => unknown, ...codes: ErrorCode[]): void {
  try {
    fn()
  } catch (err) {
    if (err instanceof IdentityError && codes.includes(err.code)) return
    throw new Error(`expected ${codes.join(' or ')}, got ${String(err)}`, { cause: err })
  }
}

/** The typed reader for each universal primitive tag. */
const READER_BY_TAG: ReadonlyMap<number, (node: Tlv) => unknown> = new Map<number, (node: Tlv) => unknown>([
  [Tag.INTEGER, (node) => readUnsignedInteger(node)],
  [Tag.OID, readOid],
  [Tag.BIT_STRING, readBitString],
  [Tag.BOOLEAN, readBoolean],
  [Tag.UTC_TIME, readTime],
  [Tag.GENERALIZED_TIME, readTime],
  [Tag.IA5_STRING, (node) => readIa5String(node)],
  [Tag.UTF8_STRING, readUtf8String],
  [Tag.PRINTABLE_STRING, readPrintableString],
])

/** Every typed reader, each given the value under the tag it expects. */
const ALL_READERS: ReadonlyArray<(node: Tlv) => unknown> = [
  ...[...READER_BY_TAG].map(
    ([tag, read]) =>
      (node: Tlv) =>
        read({ ...node, tag }),
  ),
  (node) => readSmallInteger({ ...node, tag: Tag.INTEGER }),
  (node) => readOctetAlignedBitString({ ...node, tag: Tag.BIT_STRING }),
]

/**
 * Walks a DER tree; each primitive value goes through its own tag's reader and its encapsulated
 * value (if any) is walked too. With `everyReader`, every reader is tried on every primitive.
 */
function walkDer(bytes: Uint8Array, everyReader: boolean): void {
  const visit = (node: Tlv): void => {
    if (node.tag & 0x20) {
      for (const child of readChildren(node)) visit(child)
      return
    }
    const readers = everyReader ? ALL_READERS : [READER_BY_TAG.get(node.tag) ?? (() => undefined)]
    for (const read of readers) returnsOrThrows(() => read(node), 'ERR_DER_MALFORMED')
    if (node.tag === Tag.OCTET_STRING)
      returnsOrThrows(() => visit(readEncapsulated(node)), 'ERR_DER_MALFORMED')
  }
  visit(readOne(bytes))
}

/** Offsets of the first length octet of every value in a valid DER tree. */
function lengthOffsets(der: Uint8Array): number[] {
  const out: number[] = []
  const visit = (node: Tlv): void => {
    out.push(node.start + 1)
    if (node.tag & 0x20) for (const child of readChildren(node)) visit(child)
  }
  visit(readOne(der))
  return out
}

const mutationArb = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.nat(255) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('length' as const), at: fc.nat(), value: fc.nat(255) }),
)
type Mutation = typeof mutationArb extends fc.Arbitrary<infer M> ? M : never

function mutate(seed: Buffer, offsets: ReadonlyArray<number>, mutations: ReadonlyArray<Mutation>): Buffer {
  let out = Buffer.from(seed)
  for (const m of mutations) {
    if (out.length === 0) break
    const at = m.at % out.length
    if (m.kind === 'flip') out[at] = out[at]! ^ (1 << m.bit)
    else if (m.kind === 'set') out[at] = m.value
    else if (m.kind === 'truncate') out = out.subarray(0, at)
    else {
      const lengthAt = offsets[m.at % offsets.length]!
      if (lengthAt < out.length) out[lengthAt] = m.value
    }
  }
  return out
}

/** Valid DER seeds and arbitraries of mutated copies of them. */
function mutatedFrom(seeds: ReadonlyArray<Buffer>): fc.Arbitrary<Buffer> {
  const prepared = seeds.map((seed) => ({ seed, offsets: lengthOffsets(seed) }))
  return fc
    .tuple(fc.constantFrom(...prepared), fc.array(mutationArb, { minLength: 1, maxLength: 4 }))
    .map(([{ seed, offsets }, mutations]) => mutate(seed, offsets, mutations))
}

const certSeeds = [
  fixtures.caCertPem,
  fixtures.leafCertPem,
  fixtures.rsaCertPem,
  fixtures.criticalExtCertPem,
  fixtures.v1CertPem,
].map((pem) => decodePem(pem)[0]!)
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
const csrSeeds = [
  decodePem(fixtures.leafCsrPem)[0]!,
  createCsr(ec, { uriSans: ['spiffe://td/a'], dnsSans: ['x'] }),
]
const rsaKey = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey
const keySeeds = [decodePem(fixtures.leafKeyPem)[0]!, rsaKey.export({ format: 'der', type: 'pkcs8' })]
const allSeeds = [...certSeeds, ...csrSeeds, ...keySeeds]

const anyBytes = fc.uint8Array({ maxLength: 400 })

function checkCertificate(der: Uint8Array): void {
  returnsOrThrows(() => parseCertificate(der).publicKey, 'ERR_CERT_MALFORMED')
}

function checkCsr(der: Uint8Array): void {
  returnsOrThrows(() => verifyCsrSignature(parseCsr(der)), 'ERR_CSR_MALFORMED', 'ERR_CSR_SIGNATURE_INVALID')
}

describe('parsers under fuzzing either return or throw their own IdentityError', () => {
  it.each([
    ['DER readers', (b: Uint8Array) => returnsOrThrows(() => walkDer(b, true), 'ERR_DER_MALFORMED')],
    ['parseCertificate', checkCertificate],
    [
      'parseCertificates',
      (b: Uint8Array) => returnsOrThrows(() => parseCertificates(b), 'ERR_CERT_MALFORMED'),
    ],
    ['parseCsr', checkCsr],
    ['parsePrivateKey', (b: Uint8Array) => returnsOrThrows(() => parsePrivateKey(b), 'ERR_KEY_MALFORMED')],
    ['decodePem', (b: Uint8Array) => returnsOrThrows(() => decodePem(b), 'ERR_PEM_MALFORMED')],
  ])('%s on arbitrary bytes', (_name, check) => {
    fc.assert(fc.property(anyBytes, check), { numRuns: RUNS })
  })

  it.each([
    [
      'DER readers',
      allSeeds,
      (b: Uint8Array) => returnsOrThrows(() => walkDer(b, false), 'ERR_DER_MALFORMED'),
    ],
    ['parseCertificate', certSeeds, checkCertificate],
    [
      'parseCertificates',
      certSeeds,
      (b: Uint8Array) => returnsOrThrows(() => parseCertificates(b), 'ERR_CERT_MALFORMED'),
    ],
    ['parseCsr', csrSeeds, checkCsr],
    [
      'parsePrivateKey',
      keySeeds,
      (b: Uint8Array) => returnsOrThrows(() => parsePrivateKey(b), 'ERR_KEY_MALFORMED'),
    ],
  ])('%s on mutated valid DER', (_name, seeds, check) => {
    fc.assert(fc.property(mutatedFrom(seeds), check), { numRuns: RUNS })
  })

  const pemTokens = fc.constantFrom(
    '-----BEGIN CERTIFICATE-----',
    '-----END CERTIFICATE-----',
    '-----BEGIN X-----',
    '-----END X-----',
    '-----',
    '\n',
    '\r\n',
    ' ',
    'QUJD',
    'QQ==',
    '=',
    '*',
    'text',
  )
  const pemText = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 200 }),
    fc.array(pemTokens, { maxLength: 20 }).map((tokens) => tokens.join('')),
    fc
      .tuple(fc.nat(), fc.nat(5), fc.constantFrom('', '-', '=', '\n', 'A', '*', ' '))
      .map(([at, cut, insert]) => {
        const pem = fixtures.leafCertPem
        const i = at % pem.length
        return pem.slice(0, i) + insert + pem.slice(i + cut)
      }),
  )

  it('decodePem on PEM-like text', () => {
    fc.assert(
      fc.property(pemText, fc.option(fc.constantFrom('CERTIFICATE', 'X')), (text, label) => {
        returnsOrThrows(() => decodePem(text, label ?? undefined), 'ERR_PEM_MALFORMED')
      }),
      { numRuns: RUNS },
    )
  })
})
