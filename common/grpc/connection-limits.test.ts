import { describe, expect, it } from 'vitest'
import { type ConnectionRefusal, defaultUidCap, UidConnectionLimits } from './connection-limits.js'

const creds = (uid: number) => ({ pid: 100 + uid, uid, gid: uid })

describe('UidConnectionLimits', () => {
  it('caps each uid on its own and gives slots back once', () => {
    const refused: ConnectionRefusal[] = []
    const limits = new UidConnectionLimits({ capFor: () => 2, onRefused: (r) => refused.push(r) })
    const a = limits.acquire(creds(1))
    const b = limits.acquire(creds(1))
    expect(typeof limits.acquire(creds(2))).toBe('function')
    expect(limits.acquire(creds(1))).toMatchObject({ code: 'ERR_CONNECTION_LIMIT' })
    if (typeof a !== 'function' || typeof b !== 'function') throw new Error('slots expected')
    a()
    a()
    expect(limits.heldBy(1)).toBe(1)
    expect(typeof limits.acquire(creds(1))).toBe('function')
    expect(refused).toHaveLength(1)
  })

  it('refuses a uid whose cap is 0 as unauthorized', () => {
    const limits = new UidConnectionLimits({ capFor: (uid) => (uid === 0 ? 8 : 0) })
    expect(limits.acquire(creds(65534))).toMatchObject({ code: 'ERR_PEER_UNAUTHORIZED' })
    expect(typeof limits.acquire(creds(0))).toBe('function')
  })

  it('by default gives one uid a sixteenth of the global cap', () => {
    expect(defaultUidCap(4096)).toBe(256)
    expect(defaultUidCap(16)).toBe(8)
  })
})
