import { describe, expect, it } from 'vitest'
import { IdentityError } from '../errors.js'
import {
  asBuffer,
  MAX_DER_DEPTH,
  readBitString,
  readBoolean,
  readChildren,
  readEncapsulated,
  readOctetAlignedBitString,
  readOid,
  readOne,
  readSmallInteger,
  readTlv,
  readUnsignedInteger,
  type Tlv,
  withErrorCode,
} from './der-reader.js'
import { oid, sequence, tlv } from './der-writer.js'
import { Oid } from './oid.js'

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex')

/** The IdentityError code thrown by `fn`, `'none'` when it returns, `'foreign'` for any other error. */
function codeOf(fn: () => unknown): string {
  try {
    fn()
    return 'none'
  } catch (err) {
    return err instanceof IdentityError ? err.code : 'foreign'
  }
}

function nest(levels: number): Buffer {
  let value = sequence()
  for (let i = 1; i < levels; i++) value = sequence(value)
  return value
}

function descend(node: Tlv): void {
  for (const child of readChildren(node)) descend(child)
}

describe('readTlv / readOne', () => {
  it('locates tag, header and content', () => {
    const source = hex('ff 30 03 02 01 05 ee')
    const value = readTlv(source, 1)
    expect(value).toMatchObject({ tag: 0x30, start: 1, contentStart: 3, end: 6, depth: 0 })
    expect(readChildren(value).map((c) => c.tag)).toEqual([0x02])
  })

  it('reads long-form lengths', () => {
    const content = Buffer.alloc(300, 7)
    const value = readOne(tlv(0x04, content))
    expect(value.contentStart - value.start).toBe(4)
    expect(value.end - value.contentStart).toBe(300)
  })

  it.each([
    ['empty input', ''],
    ['missing length', '30'],
    ['indefinite length', '30 80 00 00'],
    ['long form for a short length', '04 81 05 0102030405'],
    ['leading zero length octet', `04 82 0080 ${'00'.repeat(128)}`],
    ['more than four length octets', '04 85 0000000001 00'],
    ['length octets past the end', '04 82 01'],
    ['content past the end', '30 03 02 01'],
    ['trailing bytes', '04 00 00'],
    ['high-tag-number form', '1f 01 00'],
    ['end-of-contents tag', '00 00'],
  ])('refuses %s', (_name, input) => {
    expect(codeOf(() => readOne(hex(input)))).toBe('ERR_DER_MALFORMED')
  })

  it('refuses children that run past their parent', () => {
    expect(codeOf(() => readChildren(readOne(hex('30 03 04 05 00'))))).toBe('ERR_DER_MALFORMED')
  })

  it('refuses children of a primitive value', () => {
    expect(codeOf(() => readChildren(readOne(hex('04 02 04 00'))))).toBe('ERR_DER_MALFORMED')
  })

  it.each([
    [MAX_DER_DEPTH + 1, 'none'],
    [MAX_DER_DEPTH + 2, 'ERR_DER_MALFORMED'],
  ])('descending %i nested SEQUENCEs gives %s', (levels, code) => {
    expect(codeOf(() => descend(readOne(nest(levels))))).toBe(code)
  })

  it('checks the expected tag', () => {
    expect(codeOf(() => readOne(hex('04 00'), 0x30))).toBe('ERR_DER_MALFORMED')
  })

  it('views a plain Uint8Array without copying', () => {
    const bytes = new Uint8Array([0, 0x04, 0x01, 0x09])
    const view = asBuffer(bytes.subarray(1))
    expect(view.buffer).toBe(bytes.buffer)
    expect(readOne(view).contentStart).toBe(2)
  })
})

describe('readEncapsulated', () => {
  it.each([
    ['04 03 02 01 07', 'none'],
    ['04 04 02 01 07 00', 'ERR_DER_MALFORMED'],
    ['04 00', 'ERR_DER_MALFORMED'],
  ])('%s gives %s', (input, code) => {
    expect(codeOf(() => readEncapsulated(readOne(hex(input))))).toBe(code)
  })
})

describe('INTEGER', () => {
  it.each([
    ['02 01 00', '00'],
    ['02 01 7f', '7f'],
    ['02 02 00 80', '80'],
    ['02 03 01 00 00', '010000'],
  ])('%s has magnitude %s', (input, magnitude) => {
    expect(readUnsignedInteger(readOne(hex(input))).toString('hex')).toBe(magnitude)
  })

  it.each([
    ['empty', '02 00'],
    ['negative', '02 01 80'],
    ['negative one', '02 01 ff'],
    ['non-minimal positive', '02 02 00 01'],
    ['non-minimal negative', '02 02 ff 80'],
    ['wrong tag', '04 01 01'],
  ])('refuses %s', (_name, input) => {
    expect(codeOf(() => readUnsignedInteger(readOne(hex(input))))).toBe('ERR_DER_MALFORMED')
  })

  it.each([
    ['02 01 05', 10, 5],
    ['02 02 00 ff', 255, 255],
    ['02 06 7f ff ff ff ff ff', 2 ** 47, 2 ** 47 - 1],
  ])('reads the small INTEGER %s', (input, max, value) => {
    expect(readSmallInteger(readOne(hex(input)), max)).toBe(value)
  })

  it.each([
    ['above max', '02 01 0b', 10],
    ['longer than 6 octets', '02 07 01 00 00 00 00 00 00', Number.MAX_SAFE_INTEGER],
  ])('refuses a small INTEGER %s', (_name, input, max) => {
    expect(codeOf(() => readSmallInteger(readOne(hex(input)), max))).toBe('ERR_DER_MALFORMED')
  })
})

describe('OBJECT IDENTIFIER', () => {
  it.each(Object.entries(Oid))('round-trips %s', (_name, dotted) => {
    expect(readOid(readOne(oid(dotted)))).toBe(dotted)
  })

  it.each(['0.0', '1.39', '2.47', '2.5.4.3', '1.3.6.1.4.1.99999.1', '2.25.9007199254740991'])(
    'round-trips %s',
    (dotted) => {
      expect(readOid(readOne(oid(dotted)))).toBe(dotted)
    },
  )

  it.each([
    ['06 03 88 37 03', '2.999.3'],
    ['06 02 81 00', '2.48'],
    ['06 01 50', '2.0'],
  ])('reads %s as %s (first subidentifier above 127)', (input, dotted) => {
    expect(readOid(readOne(hex(input)))).toBe(dotted)
  })

  it.each([
    ['empty', '06 00'],
    ['ends inside an arc', '06 02 2a 86'],
    ['non-minimal arc', '06 03 2a 80 01'],
    ['arc above 2^53', '06 09 2a 90 80 80 80 80 80 80 00'],
  ])('refuses %s', (_name, input) => {
    expect(codeOf(() => readOid(readOne(hex(input))))).toBe('ERR_DER_MALFORMED')
  })
})

describe('BIT STRING, BOOLEAN', () => {
  it.each([
    ['03 01 00', '', 0],
    ['03 02 00 a5', 'a5', 0],
    ['03 02 01 fe', 'fe', 1],
    ['03 02 07 80', '80', 7],
  ])('%s reads as %s with %i unused bits', (input, bytes, unused) => {
    const value = readBitString(readOne(hex(input)))
    expect(value.bytes.toString('hex')).toBe(bytes)
    expect(value.unusedBits).toBe(unused)
  })

  it.each([
    ['no unused-bits octet', '03 00'],
    ['more than 7 unused bits', '03 02 08 00'],
    ['unused bits in an empty string', '03 01 01'],
    ['unused bits that are set', '03 02 01 ff'],
  ])('refuses %s', (_name, input) => {
    expect(codeOf(() => readBitString(readOne(hex(input))))).toBe('ERR_DER_MALFORMED')
  })

  it('refuses unused bits where whole octets are required', () => {
    expect(codeOf(() => readOctetAlignedBitString(readOne(hex('03 02 01 fe'))))).toBe('ERR_DER_MALFORMED')
    expect(readOctetAlignedBitString(readOne(hex('03 03 00 01 02'))).toString('hex')).toBe('0102')
  })

  it.each([
    ['01 01 ff', 'none'],
    ['01 01 00', 'none'],
    ['01 01 01', 'ERR_DER_MALFORMED'],
    ['01 02 00 00', 'ERR_DER_MALFORMED'],
    ['01 00', 'ERR_DER_MALFORMED'],
  ])('BOOLEAN %s gives %s', (input, code) => {
    expect(codeOf(() => readBoolean(readOne(hex(input))))).toBe(code)
  })

  it('reads BOOLEAN values', () => {
    expect(readBoolean(readOne(hex('01 01 ff')))).toBe(true)
    expect(readBoolean(readOne(hex('01 01 00')))).toBe(false)
  })
})

describe('withErrorCode', () => {
  it('wraps other errors and keeps the cause', () => {
    const cause = new Error('boom')
    try {
      withErrorCode('ERR_CERT_MALFORMED', 'bad', () => {
        throw cause
      })
    } catch (err) {
      expect(err).toBeInstanceOf(IdentityError)
      expect((err as IdentityError).code).toBe('ERR_CERT_MALFORMED')
      expect((err as IdentityError).cause).toBe(cause)
    }
    expect.assertions(3)
  })

  it('re-labels DER errors and passes errors of its own code through', () => {
    expect(codeOf(() => withErrorCode('ERR_CSR_MALFORMED', 'bad', () => readOne(hex('30'))))).toBe(
      'ERR_CSR_MALFORMED',
    )
    const own = new IdentityError('ERR_CSR_MALFORMED', 'own')
    try {
      withErrorCode('ERR_CSR_MALFORMED', 'bad', () => {
        throw own
      })
    } catch (err) {
      expect(err).toBe(own)
    }
  })
})
