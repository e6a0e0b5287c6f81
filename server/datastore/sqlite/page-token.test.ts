import { describe, expect, it } from 'vitest'
import { type ErrorCode, IdentityError } from '../../../lib/core/errors.js'
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../ports.js'
import { decodePageToken, encodePageToken, resolvePageSize } from './page-token.js'

function codeOf(fn: () => unknown): ErrorCode | undefined {
  try {
    fn()
  } catch (err) {
    if (err instanceof IdentityError) return err.code
    throw err
  }
  return undefined
}

const anyKey = () => true

describe('page tokens', () => {
  it.each(['00000000-0000-4000-8000-000000000000', 'spiffe://example.org/agent/ü', ''])(
    'round-trips %j',
    (key) => {
      const token = encodePageToken('agents', key)
      expect(token).toMatch(/^[A-Za-z0-9_-]+$/)
      expect(decodePageToken('agents', token, anyKey)).toBe(key)
    },
  )

  it.each([undefined, ''])('reads %j as the first page', (token) => {
    expect(decodePageToken('entries', token, anyKey)).toBeUndefined()
  })

  it('refuses a key its listing does not accept', () => {
    const token = encodePageToken('entries', 'x')
    expect(codeOf(() => decodePageToken('entries', token, (k) => k !== 'x'))).toBe('ERR_PAGE_TOKEN_INVALID')
  })

  it('refuses a token of another listing', () => {
    const token = encodePageToken('entries', 'x')
    expect(codeOf(() => decodePageToken('agents', token, anyKey))).toBe('ERR_PAGE_TOKEN_INVALID')
  })
})

describe('page sizes', () => {
  it.each<[number | undefined, number]>([
    [undefined, DEFAULT_PAGE_SIZE],
    [0, DEFAULT_PAGE_SIZE],
    [7, 7],
    [MAX_PAGE_SIZE, MAX_PAGE_SIZE],
    [MAX_PAGE_SIZE + 1, MAX_PAGE_SIZE],
  ])('%s → %i', (input, expected) => {
    expect(resolvePageSize(input)).toBe(expected)
  })

  it.each([-1, 2.5, Number.POSITIVE_INFINITY, Number.NaN])('refuses %s', (input) => {
    expect(codeOf(() => resolvePageSize(input))).toBe('ERR_REQUEST_INVALID')
  })
})
