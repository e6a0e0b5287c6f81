import { EventEmitter } from 'node:events'
import { type ClientReadableStream, status } from '@grpc/grpc-js'
import { pino } from 'pino'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { SyncAuthorizedResponse__Output } from '../../common/gen/tessera/agent/v1/SyncAuthorizedResponse.js'
import { backoffDelayMs, type SyncSnapshot, SyncStream } from './sync-stream.js'

const BACKOFF = { initialMs: 100, maxMs: 1000, jitter: 0.2 }

/** A stand-in for a grpc-js server stream: the test emits data, errors and ends on it. */
class FakeCall extends EventEmitter {
  cancelled = false
  cancel(): void {
    this.cancelled = true
    this.emit('error', Object.assign(new Error('cancelled'), { code: status.CANCELLED }))
  }
}

const EMPTY: SyncAuthorizedResponse__Output = { entries: [], bundles: [], revocations: [] }

describe('backoffDelayMs', () => {
  it.each([
    [0, 0.5, 100],
    [1, 0.5, 200],
    [3, 0.5, 800],
    [4, 0.5, 1000],
    [40, 0.5, 1000],
    [0, 0, 80],
    [0, 1, 120],
  ])('attempt %i with random %f waits %i ms', (attempt, random, expected) => {
    expect(backoffDelayMs(attempt, BACKOFF, () => random)).toBe(expected)
  })
})

describe('SyncStream', () => {
  let calls: FakeCall[]
  let snapshots: SyncSnapshot[]
  let refused: unknown[]
  let stream: SyncStream

  beforeEach(() => {
    vi.useFakeTimers()
    calls = []
    snapshots = []
    refused = []
    const open = () => {
      const call = new FakeCall()
      calls.push(call)
      return call as unknown as ClientReadableStream<SyncAuthorizedResponse__Output>
    }
    const deps = { open, observe: () => undefined, log: pino({ level: 'silent' }), backoff: BACKOFF }
    stream = new SyncStream(deps, { onSnapshot: (s) => snapshots.push(s), onRefused: (e) => refused.push(e) })
    stream.start()
  })
  afterEach(() => {
    stream.stop()
    vi.useRealTimers()
  })

  it('delivers snapshots and reconnects with growing delays after failures', () => {
    calls[0]?.emit('data', EMPTY)
    expect(snapshots).toHaveLength(1)
    calls[0]?.emit('error', Object.assign(new Error('down'), { code: status.UNAVAILABLE }))
    vi.advanceTimersByTime(79)
    expect(calls).toHaveLength(1)
    vi.advanceTimersByTime(41)
    expect(calls).toHaveLength(2)
    calls[1]?.emit('error', Object.assign(new Error('down'), { code: status.UNAVAILABLE }))
    vi.advanceTimersByTime(159)
    expect(calls).toHaveLength(2)
    vi.advanceTimersByTime(81)
    expect(calls).toHaveLength(3)
  })

  it('stops for good on PERMISSION_DENIED and reports it', async () => {
    const err = Object.assign(new Error('evicted'), { code: status.PERMISSION_DENIED })
    calls[0]?.emit('error', err)
    expect(refused).toEqual([err])
    vi.advanceTimersByTime(10_000)
    expect(calls).toHaveLength(1)
    await expect(stream.done).resolves.toBeUndefined()
  })

  it('reopens at once on restart and ignores the dropped call', () => {
    stream.restart()
    expect(calls).toHaveLength(2)
    expect(calls[0]?.cancelled).toBe(true)
    calls[0]?.emit('data', EMPTY)
    expect(snapshots).toHaveLength(0)
    calls[1]?.emit('data', EMPTY)
    expect(snapshots).toHaveLength(1)
  })

  it('reconnects when the server ends the stream without a status error', () => {
    calls[0]?.emit('end')
    vi.advanceTimersByTime(120)
    expect(calls).toHaveLength(2)
  })
})
