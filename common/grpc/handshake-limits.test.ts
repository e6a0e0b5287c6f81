import { describe, expect, it } from 'vitest'
import { HandshakeLimits, type HandshakeSlot } from './handshake-limits.js'

function slot(value: HandshakeSlot | string): HandshakeSlot {
  if (typeof value === 'string') throw new Error(`refused: ${value}`)
  return value
}

/** Slots taken through `limits`, each evicted (its handshake ended) when asked, recorded by name. */
function tracker(limits: HandshakeLimits) {
  const evicted: string[] = []
  const slots = new Map<string, HandshakeSlot>()
  const take = (name: string, address: string) => {
    const s = slot(
      limits.acquire(address, () => {
        evicted.push(name)
        slots.get(name)?.handshakeEnded()
      }),
    )
    slots.set(name, s)
    return s
  }
  return { evicted, take }
}

describe('HandshakeLimits', () => {
  it('makes room at an address at its cap by cutting off one of its own handshakes', () => {
    const limits = new HandshakeLimits({ maxHandshakingPerAddress: 2, random: () => 0 })
    const t = tracker(limits)
    t.take('a1', '10.0.0.1')
    t.take('a2', '10.0.0.1')
    t.take('b1', '10.0.0.2')
    t.take('a3', '10.0.0.1')
    expect(t.evicted).toEqual(['a1'])
  })

  it('makes room under the global cap from the busiest address, never from a quiet one', () => {
    const limits = new HandshakeLimits({ maxHandshaking: 3, maxHandshakingPerAddress: 3, random: () => 0.99 })
    const t = tracker(limits)
    t.take('agent', '127.0.0.1')
    t.take('x1', '127.0.0.2')
    t.take('x2', '127.0.0.2')
    t.take('x3', '127.0.0.3')
    expect(t.evicted).toEqual(['x2'])
  })

  it('gives a slot back when its handshake ends', () => {
    const limits = new HandshakeLimits({ maxHandshaking: 1 })
    const t = tracker(limits)
    t.take('a', '10.0.0.1').handshakeEnded()
    t.take('b', '10.0.0.2')
    expect(t.evicted).toEqual([])
  })

  it('refuses an address holding its total of connections, handshaking or not', () => {
    const limits = new HandshakeLimits({ maxConnectionsPerAddress: 2 })
    const a = slot(limits.acquire('10.0.0.1', () => undefined))
    a.handshakeEnded()
    slot(limits.acquire('10.0.0.1', () => undefined)).handshakeEnded()
    expect(typeof limits.acquire('10.0.0.1', () => undefined)).toBe('string')
    a.closed()
    slot(limits.acquire('10.0.0.1', () => undefined))
  })
})
