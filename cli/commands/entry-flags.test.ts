import { describe, expect, it } from 'vitest'
import { type ErrorCode, IdentityError } from '../../lib/core/errors.js'
import { applyEntryFlags, parseExpiresAt, parseSelectorFlag, parseTtlSeconds } from './entry-flags.js'

function codeOf(fn: () => unknown): ErrorCode | undefined {
  try {
    fn()
  } catch (err) {
    if (err instanceof IdentityError) return err.code
    throw err
  }
  return undefined
}

describe('entry flags', () => {
  it.each<[string, number]>([
    ['1h', 3600],
    ['5m', 300],
    ['90', 90],
    ['0', 0],
    ['1h30m', 5400],
  ])('reads the TTL %s as %i seconds', (text, seconds) => {
    expect(parseTtlSeconds(text, '--x509-ttl')).toBe(seconds)
  })

  it.each(['1x', '-1h', '250ms', '1.5h', ''])('refuses the TTL %j', (text) => {
    expect(codeOf(() => parseTtlSeconds(text, '--x509-ttl'))).toBe('ERR_TTL_INVALID')
  })

  it.each<[string, number]>([
    ['1893456000', 1_893_456_000],
    ['0', 0],
    ['2030-01-01T00:00:00Z', 1_893_456_000],
    ['2030-01-01T01:00:00+01:00', 1_893_456_000],
    ['2030-01-01T00:00:00.999Z', 1_893_456_000],
  ])('reads --expires-at %s', (text, seconds) => {
    expect(parseExpiresAt(text)).toBe(seconds)
  })

  it.each(['tomorrow', '2030-01-01', '2030-13-01T00:00:00Z', '-5', '1e9'])(
    'refuses --expires-at %j',
    (text) => {
      expect(codeOf(() => parseExpiresAt(text))).toBe('ERR_ENTRY_INVALID')
    },
  )

  it('splits a selector at its first colon and refuses one without a type', () => {
    expect(parseSelectorFlag('unix:uid:1000')).toEqual({ type: 'unix', value: 'uid:1000' })
    expect(codeOf(() => parseSelectorFlag('uid1000'))).toBe('ERR_SELECTOR_INVALID')
    expect(codeOf(() => parseSelectorFlag(':x'))).toBe('ERR_SELECTOR_INVALID')
  })

  it('replaces only the fields given', () => {
    const base = {
      id: 'x',
      spiffe_id: 'spiffe://a/b',
      hint: 'old',
      admin: true,
      dns_names: ['a.b'],
      revision_number: 4,
    }
    const updated = applyEntryFlags(base, { hint: 'new', selector: ['unix:gid:5'], admin: false })
    expect(updated).toEqual({
      ...base,
      hint: 'new',
      admin: false,
      selectors: [{ type: 'unix', value: 'gid:5' }],
    })
  })
})
