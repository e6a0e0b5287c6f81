import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../lib/core/clock.js'
import { RefusalThrottle } from './refusal-throttle.js'

describe('RefusalThrottle', () => {
  it('allows a burst per key, then says how long until a token is back', () => {
    const clock = new ManualClock(0)
    const throttle = new RefusalThrottle(clock, { burst: 3, perSecond: 2 })
    for (let i = 0; i < 3; i++) expect(throttle.take(['uid:1', 'exe:a'])).toBeUndefined()
    expect(throttle.take(['uid:1', 'exe:a'])).toBe(500)
    clock.advance(500)
    expect(throttle.take(['uid:1', 'exe:a'])).toBeUndefined()
  })

  it('refuses when any one of the keys is empty, and then takes from none', () => {
    const throttle = new RefusalThrottle(new ManualClock(0), { burst: 2, perSecond: 1 })
    throttle.take(['uid:1', 'exe:a'])
    throttle.take(['uid:2', 'exe:a'])
    expect(throttle.take(['uid:3', 'exe:a'])).toBeGreaterThan(0)
    expect(throttle.take(['uid:3', 'exe:b'])).toBeUndefined()
    expect(throttle.take(['uid:3', 'exe:b'])).toBeUndefined()
    expect(throttle.take(['uid:3', 'exe:c'])).toBeGreaterThan(0)
  })

  it('remembers at most maxKeys keys', () => {
    const throttle = new RefusalThrottle(new ManualClock(0), { burst: 1, maxKeys: 2 })
    throttle.take(['a'])
    throttle.take(['b'])
    throttle.take(['c'])
    expect(throttle.take(['a'])).toBeUndefined()
  })
})
