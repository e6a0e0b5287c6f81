import { beforeAll, describe, expect, it } from 'vitest'
import {
  bearer,
  loadGuardKeys,
  makeGuard,
  NOW,
  plainSocket,
  request,
} from '../../test/helpers/guard-fixture.js'
import { ManualClock } from '../core/clock.js'
import { authorizeMatching } from '../verify/authorizer.js'
import { FailureThrottle } from './throttle.js'

beforeAll(loadGuardKeys)

const PROBER = 'spiffe://example.org/agents/prober'

describe('throttling failed authentications', () => {
  it('refuses a peer with 429 and Retry-After after repeated failures, even with a valid token', async () => {
    const clock = new ManualClock(NOW)
    const { guard } = makeGuard({ clock, throttle: new FailureThrottle({ maxFailures: 3, clock }) })
    const bad = await bearer({ audience: ['other'] })
    for (let i = 0; i < 3; i++) expect(await guard.check(request(bad))).toMatchObject({ status: 401 })
    const good = await bearer()
    expect(await guard.check(request(good))).toMatchObject({
      status: 429,
      code: 'ERR_THROTTLED',
      retryAfterSeconds: 1,
    })
    expect((await guard.check(request(good, { socket: plainSocket('10.0.0.2') }))).allowed).toBe(true)
    clock.advance(1_000)
    expect((await guard.check(request(good))).allowed).toBe(true)
  })

  it('throttles an authenticated caller refused again and again by its SPIFFE ID, and no one else', async () => {
    const clock = new ManualClock(NOW)
    const { guard, audit } = makeGuard({
      clock,
      throttle: new FailureThrottle({ maxFailures: 3, clock }),
      authorizer: authorizeMatching((id) => id.path !== '/agents/prober'),
    })
    const prober = await bearer({ id: 'spiffe://example.org/agents/prober' })
    const other = await bearer({ id: 'spiffe://example.org/agents/other' })
    const from = (address: string) => ({ socket: plainSocket(address) })
    for (let i = 0; i < 3; i++)
      expect(await guard.check(request(prober, from(`10.0.0.${i + 10}`)))).toMatchObject({ status: 403 })
    // The same identity from another address is still that identity.
    expect(await guard.check(request(prober, from('10.0.0.99')))).toMatchObject({
      status: 429,
      code: 'ERR_THROTTLED',
    })
    expect(audit.events.at(-1)).toMatchObject({ code: 'ERR_THROTTLED', spiffeId: PROBER })
    // Another identity, even from an address the prober used, is not affected.
    expect((await guard.check(request(other, from('10.0.0.10')))).allowed).toBe(true)
    clock.advance(1_000)
    expect(await guard.check(request(prober))).toMatchObject({ status: 403 })
  })

  it('does not count requests without credentials, or refused before authentication', async () => {
    const clock = new ManualClock(NOW)
    const { guard } = makeGuard({ clock, throttle: new FailureThrottle({ maxFailures: 2, clock }) })
    const good = await bearer()
    for (let i = 0; i < 5; i++) {
      await guard.check(request())
      await guard.check(request({ ...good, origin: 'https://evil.example' }))
    }
    expect((await guard.check(request(good))).allowed).toBe(true)
  })
})

describe('throttled refusals in the audit', () => {
  it('the first 429 of a block is recorded, the others counted into the next block’s record', async () => {
    const clock = new ManualClock(NOW)
    const { guard, audit } = makeGuard({ clock, throttle: new FailureThrottle({ maxFailures: 1, clock }) })
    const bad = await bearer({ audience: ['other'] })
    await guard.check(request(bad))
    for (let i = 0; i < 50; i++) expect(await guard.check(request(bad))).toMatchObject({ status: 429 })
    const throttledRecords = () => audit.events.filter((e) => e.code === 'ERR_THROTTLED')
    expect(throttledRecords()).toHaveLength(1)
    clock.advance(1_000)
    await guard.check(request(bad))
    expect(await guard.check(request(bad))).toMatchObject({ status: 429 })
    expect(throttledRecords()).toHaveLength(2)
    expect(throttledRecords()[1]?.reason).toContain('49 more refused in the previous block')
  })
})
