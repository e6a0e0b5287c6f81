import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { formatDurationMs, MAX_DURATION_MS, parseDurationMs } from './duration.js'
import { type ErrorCode, IdentityError } from './errors.js'

function codeOf(fn: () => unknown): ErrorCode | undefined {
  try {
    fn()
  } catch (err) {
    if (err instanceof IdentityError) return err.code
    throw err
  }
  return undefined
}

const S = 1000
const M = 60 * S
const H = 60 * M
const D = 24 * H

describe('parseDurationMs', () => {
  it.each([
    ['1h30m', H + 30 * M],
    ['5m', 5 * M],
    ['45s', 45 * S],
    ['250ms', 250],
    ['2d', 2 * D],
    ['1d2h3m4s5ms', D + 2 * H + 3 * M + 4 * S + 5],
    ['90m', 90 * M],
    ['1m500ms', M + 500],
    ['0h30m', 30 * M],
    ['05m', 5 * M],
    ['3600', H],
    ['1', S],
    ['3650d', MAX_DURATION_MS],
    ['315360000', MAX_DURATION_MS],
  ])('%j is %d ms', (input, ms) => {
    expect(parseDurationMs(input)).toBe(ms)
  })

  it.each([
    ['', 'empty'],
    ['0', 'zero'],
    ['0s', 'zero'],
    ['0h0m', 'zero'],
    ['-5m', 'negative'],
    ['-1', 'negative'],
    ['3651d', 'over ten years'],
    ['315360001', 'over ten years'],
    ['3650d1ms', 'over ten years'],
    ['99999999999999999999999d', 'over ten years, beyond exact doubles'],
    ['1.5h', 'fraction'],
    ['1e3', 'exponent'],
    ['0x10', 'hex'],
    ['h', 'unit without a number'],
    ['5 m', 'space'],
    [' 5m', 'leading space'],
    ['5m ', 'trailing space'],
    ['5M', 'uppercase unit'],
    ['5min', 'unknown unit'],
    ['5us', 'unit below ms'],
    ['5y', 'unknown unit'],
    ['30m1h', 'units out of order'],
    ['1h1h', 'unit repeated'],
    ['1s1m', 'units out of order'],
    ['+5m', 'sign'],
    ['５m', 'fullwidth digit'],
    ['1'.repeat(65), 'too long'],
  ])('%j is refused (%s)', (input) => {
    expect(codeOf(() => parseDurationMs(input))).toBe('ERR_TTL_INVALID')
  })

  it('refuses a non-string from untyped callers', () => {
    expect(codeOf(() => parseDurationMs(300 as unknown as string))).toBe('ERR_TTL_INVALID')
  })
})

describe('formatDurationMs', () => {
  it.each([
    [H + 30 * M, '1h30m'],
    [5 * M, '5m'],
    [45 * S, '45s'],
    [250, '250ms'],
    [2 * D, '2d'],
    [D + 2 * H + 3 * M + 4 * S + 5, '1d2h3m4s5ms'],
    [90 * M, '1h30m'],
    [0, '0s'],
    [MAX_DURATION_MS, '3650d'],
  ])('%d ms is %j', (ms, text) => {
    expect(formatDurationMs(ms)).toBe(text)
  })

  it.each([[-1], [1.5], [Number.NaN], [Number.POSITIVE_INFINITY], [2 ** 53]])('%d is refused', (ms) => {
    expect(codeOf(() => formatDurationMs(ms))).toBe('ERR_TTL_INVALID')
  })
})

describe('duration properties', () => {
  it('parse∘format is the identity on every accepted duration', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX_DURATION_MS }), (ms) => {
        expect(parseDurationMs(formatDurationMs(ms))).toBe(ms)
      }),
    )
  })

  it('any string gives a duration in (0, ten years] or ERR_TTL_INVALID', () => {
    const near = fc.string({ unit: fc.constantFrom(...'0123456789dhms .-'.split('')), maxLength: 24 })
    fc.assert(
      fc.property(fc.oneof(near, fc.string({ unit: 'binary', maxLength: 80 })), (input) => {
        const code = codeOf(() => parseDurationMs(input))
        if (code !== undefined) {
          expect(code).toBe('ERR_TTL_INVALID')
          return
        }
        const ms = parseDurationMs(input)
        expect(Number.isSafeInteger(ms) && ms > 0 && ms <= MAX_DURATION_MS).toBe(true)
        expect(parseDurationMs(formatDurationMs(ms))).toBe(ms)
      }),
      { numRuns: 2000 },
    )
  })
})
