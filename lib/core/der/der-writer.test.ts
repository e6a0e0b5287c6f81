import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { readOid, readOne } from './der-reader.js'
import { encodeLength, namedBits, oid, smallInteger, unsignedInteger, x509Time } from './der-writer.js'

describe('der-writer', () => {
  it.each([
    ['1.2.840.10045.4.3.2', '06082a8648ce3d040302'],
    ['2.5.29.17', '0603551d11'],
    ['2.999.3', '0603883703'],
    ['1.3.6.1.4.1.99999.1', '06092b06010401868d1f01'],
  ])('encodes OID %s', (dotted, hex) => {
    expect(oid(dotted).toString('hex')).toBe(hex)
    expect(readOid(readOne(oid(dotted)))).toBe(dotted)
  })

  it('round-trips arbitrary OIDs through the reader', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 }),
        fc.integer({ min: 0, max: 39 }),
        fc.array(fc.integer({ min: 0, max: 2 ** 31 }), { maxLength: 8 }),
        (a, b, rest) => {
          const dotted = [a, a === 2 ? b * 50 : b, ...rest].join('.')
          expect(readOid(readOne(oid(dotted)))).toBe(dotted)
        },
      ),
    )
  })

  it.each([
    [0, '00'],
    [127, '7f'],
    [128, '8180'],
    [256, '820100'],
  ])('encodes length %i minimally', (n, hex) => {
    expect(encodeLength(n).toString('hex')).toBe(hex)
  })

  it('encodes integers as DER: minimal, positive, sign octet when needed', () => {
    expect(unsignedInteger(Buffer.from([0, 0, 0x7f])).toString('hex')).toBe('02017f')
    expect(unsignedInteger(Buffer.from([0x80])).toString('hex')).toBe('02020080')
    expect(unsignedInteger(Buffer.alloc(0)).toString('hex')).toBe('020100')
    expect(smallInteger(2).toString('hex')).toBe('020102')
  })

  it('encodes named bits with trailing zero bits dropped', () => {
    expect(namedBits([0, 2, 4]).toString('hex')).toBe('030203a8')
    expect(namedBits([5, 6]).toString('hex')).toBe('03020106')
    expect(namedBits([8]).toString('hex')).toBe('0303070080')
  })

  it('writes UTCTime through 2049 and GeneralizedTime from 2050', () => {
    expect(
      x509Time(Date.UTC(2026, 0, 2, 3, 4, 5))
        .toString('latin1')
        .slice(2),
    ).toBe('260102030405Z')
    expect(
      x509Time(Date.UTC(2050, 0, 1))
        .toString('latin1')
        .slice(2),
    ).toBe('20500101000000Z')
  })
})
