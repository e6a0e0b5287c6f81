import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import { codeOf } from '../../test/helpers/error-code.js'
import { UidStreamLimits } from './stream-limits.js'

describe('UidStreamLimits', () => {
  it('caps open streams per uid and frees a slot once when a stream ends, however it ends', async () => {
    const limits = new UidStreamLimits(2)
    const a = new EventEmitter()
    const b = new EventEmitter()
    limits.open(1000, a)
    limits.open(1000, b)
    limits.open(1001, new EventEmitter())
    expect(await codeOf(Promise.resolve().then(() => limits.open(1000, new EventEmitter())))).toBe(
      'ERR_CONNECTION_LIMIT',
    )
    a.emit('cancelled')
    a.emit('close')
    expect(limits.openBy(1000)).toBe(1)
    b.emit('finish')
    expect(limits.openBy(1000)).toBe(0)
  })
})
