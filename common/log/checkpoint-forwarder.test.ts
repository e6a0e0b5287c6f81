import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { IdentityError } from '../../lib/core/errors.js'
import type { SignedCheckpoint } from './audit-chain-writer.js'
import { CheckpointForwarder } from './checkpoint-forwarder.js'

const cp = (n: number): SignedCheckpoint => ({ note: `note ${n}\n`, x5c: [] })

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

describe('CheckpointForwarder', () => {
  it('sends off the write, keeps only the newest unsent one, and retries it after a failure', async () => {
    const sent: string[] = []
    let fail = true
    const errors: unknown[] = []
    const forwarder = new CheckpointForwarder({
      send: async (c) => {
        if (fail) throw new Error('server down')
        sent.push(c.note)
      },
      onError: (err) => errors.push(err),
      retryMs: 1000,
    })
    forwarder.offer(cp(1))
    expect(sent).toEqual([]) // nothing during the offer
    await vi.advanceTimersByTimeAsync(0)
    expect(errors).toHaveLength(1)
    forwarder.offer(cp(2))
    forwarder.offer(cp(3))
    fail = false
    await vi.advanceTimersByTimeAsync(1000)
    expect(sent).toEqual(['note 3\n'])
    await vi.advanceTimersByTimeAsync(5000)
    expect(sent).toEqual(['note 3\n'])
    forwarder.close()
  })

  it('drops a checkpoint the server refused for good instead of sending it again', async () => {
    let calls = 0
    const forwarder = new CheckpointForwarder({
      send: async () => {
        calls++
        throw new IdentityError('ERR_AUDIT_CHECKPOINT_CONFLICT', 'goes back')
      },
      retryMs: 1000,
    })
    forwarder.offer(cp(1))
    await vi.advanceTimersByTimeAsync(10_000)
    expect(calls).toBe(1)
    forwarder.close()
  })

  it('sends nothing once closed, and a throwing error handler does not stop it', async () => {
    const sent: string[] = []
    let fail = true
    const forwarder = new CheckpointForwarder({
      send: async (c) => {
        if (fail) throw new Error('down')
        sent.push(c.note)
      },
      onError: () => {
        throw new Error('logger broke')
      },
      retryMs: 1000,
    })
    forwarder.offer(cp(1))
    await vi.advanceTimersByTimeAsync(0)
    fail = false
    await vi.advanceTimersByTimeAsync(1000)
    expect(sent).toEqual(['note 1\n'])
    forwarder.close()
    forwarder.offer(cp(2))
    await vi.advanceTimersByTimeAsync(5000)
    expect(sent).toEqual(['note 1\n'])
  })
})
