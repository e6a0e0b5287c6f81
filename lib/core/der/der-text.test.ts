import { describe, expect, it } from 'vitest'
import { IdentityError } from '../errors.js'
import { readOne } from './der-reader.js'
import { readIa5String, readPrintableString, readTime, readUtf8String } from './der-text.js'
import { Tag, tlv, x509Time } from './der-writer.js'

function codeOf(fn: () => unknown): string {
  try {
    fn()
    return 'none'
  } catch (err) {
    return err instanceof IdentityError ? err.code : 'foreign'
  }
}

const utc = (text: string): Buffer => tlv(Tag.UTC_TIME, Buffer.from(text, 'latin1'))
const generalized = (text: string): Buffer => tlv(Tag.GENERALIZED_TIME, Buffer.from(text, 'latin1'))

describe('readTime', () => {
  it.each([
    [utc('250101000000Z'), Date.UTC(2025, 0, 1)],
    [utc('491231235959Z'), Date.UTC(2049, 11, 31, 23, 59, 59)],
    [utc('500101000000Z'), Date.UTC(1950, 0, 1)],
    [utc('240229120000Z'), Date.UTC(2024, 1, 29, 12)],
    [generalized('20500101000000Z'), Date.UTC(2050, 0, 1)],
    [generalized('99991231235959Z'), Date.UTC(9999, 11, 31, 23, 59, 59)],
    [generalized('00450301000000Z'), new Date('0045-03-01T00:00:00Z').getTime()],
    [generalized('20000229000000Z'), Date.UTC(2000, 1, 29)],
  ])('reads %s', (der, ms) => {
    expect(readTime(readOne(der))).toBe(ms)
  })

  it.each([0, Date.UTC(2049, 11, 31, 23, 59, 59), Date.UTC(2050, 0, 1), Date.UTC(2125, 5, 6, 7, 8, 9)])(
    'round-trips the writer at %i',
    (ms) => {
      expect(readTime(readOne(x509Time(ms)))).toBe(ms)
    },
  )

  it.each([
    ['UTCTime without seconds', utc('2501010000Z')],
    ['UTCTime with an offset', utc('250101000000+0100')],
    ['UTCTime without Z', utc('250101000000')],
    ['GeneralizedTime with a fraction', generalized('20500101000000.5Z')],
    ['GeneralizedTime without seconds', generalized('205001010000Z')],
    ['month 13', utc('251301000000Z')],
    ['month 0', utc('250001000000Z')],
    ['day 0', utc('250100000000Z')],
    ['February 30', utc('250230000000Z')],
    ['February 29 of a common year', utc('230229000000Z')],
    ['February 29 of 1900', generalized('19000229000000Z')],
    ['April 31', utc('250431000000Z')],
    ['hour 24', utc('250101240000Z')],
    ['minute 60', utc('250101006000Z')],
    ['leap second', utc('250101000060Z')],
    ['a non-digit', utc('25010100000aZ')],
    ['a sign', utc('25-101000000Z')],
    ['the wrong tag', tlv(Tag.OCTET_STRING, Buffer.from('250101000000Z'))],
  ])('refuses %s', (_name, der) => {
    expect(codeOf(() => readTime(readOne(der)))).toBe('ERR_DER_MALFORMED')
  })

  it('refuses a missing value', () => {
    expect(codeOf(() => readTime(undefined))).toBe('ERR_DER_MALFORMED')
  })
})

describe('strings', () => {
  it.each([
    ['IA5', () => readIa5String(readOne(tlv(Tag.IA5_STRING, Buffer.from('spiffe://a/b')))), 'none'],
    [
      'IA5 with a high octet',
      () => readIa5String(readOne(tlv(Tag.IA5_STRING, Buffer.from([0x61, 0xe9])))),
      'ERR_DER_MALFORMED',
    ],
    ['IA5 under an implicit tag', () => readIa5String(readOne(tlv(0x86, Buffer.from('x'))), 0x86), 'none'],
    [
      'IA5 under the wrong tag',
      () => readIa5String(readOne(tlv(0x86, Buffer.from('x')))),
      'ERR_DER_MALFORMED',
    ],
    ['UTF-8', () => readUtf8String(readOne(tlv(Tag.UTF8_STRING, Buffer.from('café')))), 'none'],
    [
      'invalid UTF-8',
      () => readUtf8String(readOne(tlv(Tag.UTF8_STRING, Buffer.from([0xc3, 0x28])))),
      'ERR_DER_MALFORMED',
    ],
    [
      'Printable',
      () => readPrintableString(readOne(tlv(Tag.PRINTABLE_STRING, Buffer.from("Ab 1'()+,-./:=?")))),
      'none',
    ],
    [
      'Printable with *',
      () => readPrintableString(readOne(tlv(Tag.PRINTABLE_STRING, Buffer.from('a*b')))),
      'ERR_DER_MALFORMED',
    ],
  ])('%s gives %s', (_name, read, code) => {
    expect(codeOf(read)).toBe(code)
  })

  it('decodes the text', () => {
    expect(readUtf8String(readOne(tlv(Tag.UTF8_STRING, Buffer.from('café'))))).toBe('café')
    expect(readIa5String(readOne(tlv(Tag.IA5_STRING, Buffer.from('a.example.org'))))).toBe('a.example.org')
  })
})
