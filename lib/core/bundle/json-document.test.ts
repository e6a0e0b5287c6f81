import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isIdentityError } from '../errors.js'
import { listMembers, parseJsonDocument } from './json-document.js'

describe('listMembers', () => {
  it('gives names and raw values, repeats included, through nesting, strings and escapes', () => {
    const text =
      ' { "a" : 18446744073709551615 ,"b":{"}":"]\\"{"},"c":[1,[2,{"d":3}]],"a":"x\\\\","e\\u0041":null } '
    expect(listMembers(text)).toEqual([
      { name: 'a', raw: '18446744073709551615' },
      { name: 'b', raw: '{"}":"]\\"{"}' },
      { name: 'c', raw: '[1,[2,{"d":3}]]' },
      { name: 'a', raw: '"x\\\\"' },
      { name: 'eA', raw: 'null' },
    ])
  })

  it('gives nothing for an empty object', () => {
    expect(listMembers('{ }')).toEqual([])
  })

  it('agrees with JSON.parse on any object (fuzz)', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.constantFrom(0, 2), (obj, indent) => {
        // Compare with what JSON.parse reads back (JSON has no -0, for one).
        const text = JSON.stringify(obj, null, indent)
        const parsed = JSON.parse(text) as Record<string, unknown>
        const members = listMembers(text)
        expect(members.map((m) => m.name)).toEqual(Object.keys(parsed))
        for (const m of members) expect(JSON.parse(m.raw)).toEqual(parsed[m.name])
      }),
      { numRuns: 300 },
    )
  })
})

describe('parseJsonDocument', () => {
  it.each([['{'], [Uint8Array.from([0xc3, 0x28])], [42 as unknown as string]])('refuses %s', (input) => {
    let code: string | undefined
    try {
      parseJsonDocument(input)
    } catch (err) {
      code = isIdentityError(err) ? err.code : 'other'
    }
    expect(code).toBe('ERR_BUNDLE_MALFORMED')
  })
})
