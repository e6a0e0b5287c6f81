import { describe, expect, it } from 'vitest'
import { activateThresholdMs, planRotation, prepareThresholdMs } from './rotation-plan.js'

const H = 60 * 60 * 1000
const DAY = 24 * H
const ca24h = { notBeforeMs: 0, notAfterMs: 24 * H }

describe('planRotation', () => {
  it('thresholds are ½ and ⅙ of the lifetime for a 24 h CA', () => {
    expect(prepareThresholdMs(ca24h)).toBe(12 * H)
    expect(activateThresholdMs(ca24h)).toBe(4 * H)
  })

  it('caps the thresholds at 30 and 7 days for long-lived CAs', () => {
    const year = { notBeforeMs: 0, notAfterMs: 365 * DAY }
    expect(prepareThresholdMs(year)).toBe(30 * DAY)
    expect(activateThresholdMs(year)).toBe(7 * DAY)
  })

  it.each([
    ['nothing at all', undefined, undefined, 0, { bootstrap: true, prepare: false, activate: false }],
    ['fresh active', ca24h, undefined, 1 * H, { bootstrap: false, prepare: false, activate: false }],
    [
      'just before half-life',
      ca24h,
      undefined,
      12 * H - 1,
      { bootstrap: false, prepare: false, activate: false },
    ],
    ['at half-life', ca24h, undefined, 12 * H, { bootstrap: false, prepare: true, activate: false }],
    [
      'prepared, before ⅚',
      ca24h,
      { notBeforeMs: 12 * H, notAfterMs: 36 * H },
      20 * H - 1,
      { bootstrap: false, prepare: false, activate: false },
    ],
    [
      'prepared, at ⅚',
      ca24h,
      { notBeforeMs: 12 * H, notAfterMs: 36 * H },
      20 * H,
      { bootstrap: false, prepare: false, activate: true },
    ],
    [
      'active expired, prepared live',
      ca24h,
      { notBeforeMs: 12 * H, notAfterMs: 36 * H },
      25 * H,
      { bootstrap: false, prepare: false, activate: true },
    ],
    [
      'everything expired',
      ca24h,
      { notBeforeMs: 12 * H, notAfterMs: 36 * H },
      40 * H,
      { bootstrap: true, prepare: false, activate: false },
    ],
  ])('%s', (_name, active, prepared, now, want) => {
    expect(planRotation(active, prepared, now)).toEqual(want)
  })
})
