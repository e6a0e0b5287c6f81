import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../lib/core/clock.js'
import type { RegistrationEntry } from '../../lib/core/registration-entry.js'
import { RevocationList } from '../../lib/core/revocation.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import { JwtCache } from './jwt-cache.js'
import type { MintedJwt, SigningServer } from './ports.js'

const T0 = Date.UTC(2026, 0, 1)

/** The signing port held in memory: mints numbered tokens and records what it was asked. */
class CountingServer implements SigningServer {
  readonly asked: Array<ReadonlyArray<string>> = []
  constructor(private readonly clock: ManualClock) {}
  async batchNewX509Svid(): Promise<never> {
    throw new Error('not used here')
  }
  async newJwtSvid(_entryId: string, audience: ReadonlyArray<string>): Promise<MintedJwt> {
    this.asked.push(audience)
    const now = this.clock.nowMs()
    return { token: `t${this.asked.length}`, issuedAtMs: now, expiresAtMs: now + 300_000 }
  }
  async newWitSvid(): Promise<never> {
    throw new Error('not used here')
  }
}

const entry = {
  id: 'e1',
  revision: 0,
  spiffeId: SpiffeId.parse('spiffe://td/w'),
} as unknown as RegistrationEntry

describe('JwtCache', () => {
  it('reuses a token until half its lifetime, then mints a new one', async () => {
    const clock = new ManualClock(T0)
    const server = new CountingServer(clock)
    const cache = new JwtCache(clock, server)
    expect((await cache.fetch(entry, ['a'])).token).toBe('t1')
    clock.advance(149_000)
    expect((await cache.fetch(entry, ['a'])).token).toBe('t1')
    clock.advance(1_000)
    expect((await cache.fetch(entry, ['a'])).token).toBe('t2')
  })

  it('keeps audience sets apart, even ones whose joined text would collide', async () => {
    const clock = new ManualClock(T0)
    const server = new CountingServer(clock)
    const cache = new JwtCache(clock, server)
    await cache.fetch(entry, ['a', 'b'])
    await cache.fetch(entry, ['a\nb'])
    await cache.fetch(entry, ['b', 'a'])
    expect(server.asked).toEqual([['a', 'b'], ['a\nb'], ['b', 'a']])
  })

  it('shares one server call between concurrent requests for the same key', async () => {
    const clock = new ManualClock(T0)
    const server = new CountingServer(clock)
    const cache = new JwtCache(clock, server)
    const [x, y] = await Promise.all([cache.fetch(entry, ['a']), cache.fetch(entry, ['a'])])
    expect(x.token).toBe(y.token)
    expect(server.asked).toHaveLength(1)
  })

  it('forgets a token a revocation covers (by jti or by SPIFFE ID), so the next request mints a new one', async () => {
    const clock = new ManualClock(T0)
    let n = 0
    const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url')
    const server: SigningServer = {
      batchNewX509Svid: async () => {
        throw new Error('not used here')
      },
      newWitSvid: async () => {
        throw new Error('not used here')
      },
      newJwtSvid: async () => {
        n++
        const token = `${part({ alg: 'ES256' })}.${part({ sub: 'spiffe://td/w', jti: `j${n}` })}.sig`
        return { token, issuedAtMs: clock.nowMs(), expiresAtMs: clock.nowMs() + 300_000 }
      },
    }
    const cache = new JwtCache(clock, server)
    const first = await cache.fetch(entry, ['a'])
    const revoke = (kind: 'jwt-id' | 'spiffe-id', value: string, issuedBeforeMs = 0) =>
      RevocationList.of([
        { kind, value, issuedBeforeMs, revokedAtMs: T0, keepUntilMs: T0 + 300_000, reason: '' },
      ])
    cache.dropRevoked(revoke('jwt-id', 'j9'))
    expect((await cache.fetch(entry, ['a'])).token).toBe(first.token)
    cache.dropRevoked(revoke('jwt-id', 'j1'))
    const second = await cache.fetch(entry, ['a'])
    expect(second.token).not.toBe(first.token)
    cache.dropRevoked(revoke('spiffe-id', 'spiffe://td/w', T0 + 1000))
    expect((await cache.fetch(entry, ['a'])).token).not.toBe(second.token)
  })
})
