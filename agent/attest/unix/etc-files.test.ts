import { describe, expect, it } from 'vitest'
import { indexIdNames, parseGroupLine, parsePasswdLine } from './etc-files.js'

describe('parsePasswdLine', () => {
  it.each([
    ['root:x:0:0:root:/root:/bin/bash', { id: 0, name: 'root' }],
    ['nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin', { id: 65534, name: 'nobody' }],
    ['svc:*:4294967295:1::/:', { id: 4294967295, name: 'svc' }],
    ['crlf:x:7:7:::\r', { id: 7, name: 'crlf' }],
    ['', undefined],
    ['# comment:x:1:1:::', undefined],
    ['+nisuser:x:1:1:::', undefined],
    ['-nisuser:x:1:1:::', undefined],
    [':x:1:1:::', undefined],
    ['short:x:1:1', undefined],
    ['long:x:1:1::::extra', undefined],
    ['neg:x:-1:1:::', undefined],
    ['lead:x:01:1:::', undefined],
    ['hex:x:0x10:1:::', undefined],
    ['big:x:4294967296:1:::', undefined],
    ['empty:x::1:::', undefined],
  ])('%j → %j', (line, expected) => {
    expect(parsePasswdLine(line)).toEqual(expected)
  })
})

describe('parseGroupLine', () => {
  it.each([
    ['root:x:0:', { id: 0, name: 'root' }],
    ['nogroup:x:65534:', { id: 65534, name: 'nogroup' }],
    ['sudo:x:27:alice,bob', { id: 27, name: 'sudo' }],
    ['passwd-shaped:x:1:1:gecos:/home:/bin/sh', undefined],
    ['three:x:1', undefined],
    ['# c:x:1:', undefined],
    ['bad:x:1a:', undefined],
  ])('%j → %j', (line, expected) => {
    expect(parseGroupLine(line)).toEqual(expected)
  })
})

describe('indexIdNames', () => {
  it('keeps the first name for an id and skips junk', async () => {
    const text = 'a:x:1:1:::\njunk\nb:x:1:1:::\nc:x:2:2:::\n\n# x\n'
    expect([...(await indexIdNames(text, parsePasswdLine))]).toEqual([
      [1, 'a'],
      [2, 'c'],
    ])
  })

  it('reads a last line without a newline', async () => {
    expect([...(await indexIdNames('g:x:5:', parseGroupLine))]).toEqual([[5, 'g']])
  })

  it.each([
    [10, true],
    [100, false],
  ])('with %i lines per slice, yields to the event loop: %s', async (linesPerSlice, yields) => {
    const text = Array.from({ length: 50 }, (_, i) => `u${i}:x:${i}:0:::`).join('\n')
    let isOtherTaskRun = false
    setImmediate(() => {
      isOtherTaskRun = true
    })
    const names = await indexIdNames(text, parsePasswdLine, { linesPerSlice })
    expect(isOtherTaskRun).toBe(yields)
    expect(names.size).toBe(50)
    expect(names.get(49)).toBe('u49')
  })
})
