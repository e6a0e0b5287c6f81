import { describe, expect, it } from 'vitest'
import { ManualClock } from '../core/clock.js'
import { FailureThrottle } from './throttle.js'

const START = 1_700_000_000_000

function setup(overrides: ConstructorParameters<typeof FailureThrottle>[0] = {}) {
  const clock = new ManualClock(START)
  const throttle = new FailureThrottle({
    maxFailures: 3,
    windowMs: 60_000,
    baseDelayMs: 1_000,
    maxDelayMs: 8_000,
    clock,
    ...overrides,
  })
  return { clock, throttle }
}

function failTimes(throttle: FailureThrottle, key: string, n: number) {
  let verdict = throttle.check(key)
  for (let i = 0; i < n; i++) verdict = throttle.recordFailure(key)
  return verdict
}

describe('FailureThrottle', () => {
  it('lets a peer fail maxFailures - 1 times, then blocks it for the base delay', () => {
    const { throttle } = setup()
    expect(failTimes(throttle, 'a', 2)).toEqual({ isBlocked: false })
    expect(throttle.recordFailure('a')).toMatchObject({ isBlocked: true, retryAfterMs: 1_000 })
    expect(throttle.check('a')).toMatchObject({ isBlocked: true, retryAfterMs: 1_000 })
    expect(throttle.check('b')).toEqual({ isBlocked: false })
  })

  it('counts down and opens when the block is over', () => {
    const { clock, throttle } = setup()
    failTimes(throttle, 'a', 3)
    clock.advance(400)
    expect(throttle.check('a')).toMatchObject({ isBlocked: true, retryAfterMs: 600 })
    clock.advance(600)
    expect(throttle.check('a')).toEqual({ isBlocked: false })
  })

  it('doubles the block on each failure after one, up to the cap', () => {
    const { clock, throttle } = setup()
    failTimes(throttle, 'a', 3)
    const delays: number[] = []
    for (let i = 0; i < 5; i++) {
      const blocked = throttle.check('a')
      if (blocked.isBlocked) clock.advance(blocked.retryAfterMs)
      const verdict = throttle.recordFailure('a')
      delays.push(verdict.isBlocked ? verdict.retryAfterMs : 0)
    }
    expect(delays).toEqual([2_000, 4_000, 8_000, 8_000, 8_000])
  })

  it('ignores failures that arrive while blocked (requests already in flight)', () => {
    const { throttle } = setup()
    failTimes(throttle, 'a', 3)
    expect(failTimes(throttle, 'a', 10)).toMatchObject({ isBlocked: true, retryAfterMs: 1_000 })
  })

  it('forgets failures older than the window', () => {
    const { clock, throttle } = setup()
    failTimes(throttle, 'a', 2)
    clock.advance(60_000)
    expect(failTimes(throttle, 'a', 2)).toEqual({ isBlocked: false })
    expect(throttle.recordFailure('a').isBlocked).toBe(true)
  })

  it('forgives a blocked peer that stays quiet for a window after its block', () => {
    const { clock, throttle } = setup()
    failTimes(throttle, 'a', 3)
    clock.advance(1_000 + 60_000)
    expect(failTimes(throttle, 'a', 2)).toEqual({ isBlocked: false })
    expect(throttle.recordFailure('a')).toMatchObject({ isBlocked: true, retryAfterMs: 1_000 })
  })

  it('remembers at most maxPeers, dropping the least recently seen', () => {
    const { throttle } = setup({ maxPeers: 2 })
    failTimes(throttle, 'a', 3)
    failTimes(throttle, 'b', 1)
    throttle.recordFailure('a') // a is now the most recent
    failTimes(throttle, 'c', 1)
    expect(throttle.size).toBe(2)
    expect(throttle.check('a').isBlocked).toBe(true)
    expect(failTimes(throttle, 'b', 2).isBlocked).toBe(false) // b was forgotten and starts over
  })

  it('has sane defaults', () => {
    const throttle = new FailureThrottle({ clock: new ManualClock(START) })
    expect(failTimes(throttle, 'a', 4).isBlocked).toBe(false)
    expect(throttle.recordFailure('a')).toMatchObject({ isBlocked: true, retryAfterMs: 1_000 })
  })
})
