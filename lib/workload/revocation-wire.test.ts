import { describe, expect, it } from 'vitest'
import { revocationsFromWire, revocationToWire } from './revocation-wire.js'

const GOOD = {
  kind: 'jwt-id',
  value: 'j1',
  issued_before_ms: 0,
  revoked_at_ms: 1000,
  keep_until_ms: 2000,
  reason: 'r',
}

describe('revocations on the wire', () => {
  it('round-trips a revocation', () => {
    const [r] = revocationsFromWire([GOOD])
    expect(r).toEqual({
      kind: 'jwt-id',
      value: 'j1',
      issuedBeforeMs: 0,
      revokedAtMs: 1000,
      keepUntilMs: 2000,
      reason: 'r',
    })
    expect(revocationToWire(r!)).toEqual(GOOD)
  })

  it.each([
    ['a kind this version does not know', { ...GOOD, kind: 'session' }],
    ['an empty value', { ...GOOD, value: '' }],
    ['a negative time', { ...GOOD, keep_until_ms: -1 }],
    ['a time that is not whole ms', { ...GOOD, revoked_at_ms: 1.5 }],
  ])('skips %s and keeps the others', (_name, bad) => {
    expect(revocationsFromWire([bad, GOOD]).map((r) => r.value)).toEqual(['j1'])
  })
})
