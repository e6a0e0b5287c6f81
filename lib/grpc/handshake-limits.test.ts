import { describe, expect, it } from 'vitest'
import { HandshakeLimits, type HandshakeSlot } from './handshake-limits.js'

function slot(value: HandshakeSlot | string): HandshakeSlot {
  if (typeof value === 'string') throw new Error(`refused: ${value}`)
  return value
}

describe('HandshakeLimits', () => {
  it('caps connections handshaking per address and in all; a finished handshake frees its slot', () => {
    const limits = new HandshakeLimits({ maxHandshaking: 3, maxHandshakingPerAddress: 2 })
    const a1 = slot(limits.acquire('10.0.0.1'))
    slot(limits.acquire('10.0.0.1'))
    expect(typeof limits.acquire('10.0.0.1')).toBe('string')
    slot(limits.acquire('10.0.0.2'))
    expect(typeof limits.acquire('10.0.0.3')).toBe('string')
    a1.handshakeEnded()
    a1.handshakeEnded()
    slot(limits.acquire('10.0.0.3'))
  })

  it('caps what one address holds in all, handshaking or not', () => {
    const limits = new HandshakeLimits({ maxConnectionsPerAddress: 2 })
    const a = slot(limits.acquire('10.0.0.1'))
    a.handshakeEnded()
    slot(limits.acquire('10.0.0.1')).handshakeEnded()
    expect(typeof limits.acquire('10.0.0.1')).toBe('string')
    a.closed()
    slot(limits.acquire('10.0.0.1'))
  })
})
