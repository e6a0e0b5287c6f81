import { status } from '@grpc/grpc-js'
import { describe, expect, it } from 'vitest'
import { IdentityError } from '../core/errors.js'
import type { Scheduler } from './backoff.js'
import type { Watch } from './watch.js'
import { WatchedValue } from './watched-value.js'
import { WorkloadApiError } from './workload-api-error.js'

/** Timers run by hand. */
class ManualScheduler implements Scheduler {
  readonly #pending = new Map<number, () => void>()
  #next = 0
  setTimeout(callback: () => void): unknown {
    this.#pending.set(++this.#next, callback)
    return this.#next
  }
  clearTimeout(handle: unknown): void {
    this.#pending.delete(handle as number)
  }
  get size(): number {
    return this.#pending.size
  }
  fire(): void {
    const due = [...this.#pending.values()]
    this.#pending.clear()
    for (const cb of due) cb()
  }
}

/** A watch the test drives: push values and errors, end it. */
function fakeWatch<T>() {
  let onUpdate: (value: T) => void = () => {}
  let onError: (err: IdentityError) => void = () => {}
  let end: (err: IdentityError | undefined) => void = () => {}
  let isStopped = false
  const watch: Watch = {
    stop: () => {
      isStopped = true
      end(undefined)
    },
    done: new Promise((resolve) => {
      end = resolve
    }),
  }
  const start = (u: (value: T) => void, e: (err: IdentityError) => void) => {
    onUpdate = u
    onError = e
    return watch
  }
  return {
    start,
    push: (value: T) => onUpdate(value),
    fail: (err: IdentityError) => onError(err),
    end: (err: IdentityError) => end(err),
    isStopped: () => isStopped,
  }
}

describe('WatchedValue', () => {
  it('resolves ready at the first value, clears its timer, and keeps the latest value', async () => {
    const scheduler = new ManualScheduler()
    const value = new WatchedValue<number>('numbers')
    const w = fakeWatch<number>()
    value.start(w.start, undefined)
    const ready = value.ready(1000, scheduler)
    expect(value.value).toBeUndefined()
    w.push(1)
    await ready
    expect(scheduler.size).toBe(0)
    w.push(2)
    expect(value.value).toBe(2)
  })

  it('times out with ERR_WORKLOAD_API_UNAVAILABLE, the last failure as cause', async () => {
    const scheduler = new ManualScheduler()
    const value = new WatchedValue<number>('numbers')
    const w = fakeWatch<number>()
    const reported: string[] = []
    value.start(w.start, (e) => reported.push(e.code))
    const ready = value.ready(1000, scheduler)
    const last = new WorkloadApiError('ERR_NO_IDENTITY', 'no identity issued', status.PERMISSION_DENIED)
    w.fail(last)
    scheduler.fire()
    const err = await ready.catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'ERR_WORKLOAD_API_UNAVAILABLE' })
    expect((err as Error).message).toContain('no identity issued')
    expect((err as Error).cause).toBe(last)
    expect(reported).toEqual(['ERR_NO_IDENTITY'])
  })

  it('rejects with the final error when the watch ends before the first value', async () => {
    const value = new WatchedValue<number>('numbers')
    const w = fakeWatch<number>()
    value.start(w.start, undefined)
    const ready = value.ready(Number.POSITIVE_INFINITY)
    const final = new WorkloadApiError('ERR_REQUEST_INVALID', 'bad request', status.INVALID_ARGUMENT)
    w.end(final)
    await expect(ready).rejects.toBe(final)
  })

  it('tells every listener even when one throws, then rethrows the first error for the watch to report', () => {
    const value = new WatchedValue<number>('numbers')
    const w = fakeWatch<number>()
    value.start(w.start, undefined)
    const seen: number[] = []
    value.onUpdate(() => {
      throw new Error('listener bug')
    })
    const off = value.onUpdate((n) => seen.push(n))
    expect(() => w.push(1)).toThrow('listener bug')
    expect(seen).toEqual([1])
    expect(value.value).toBe(1)
    off()
    expect(() => w.push(2)).toThrow('listener bug')
    expect(seen).toEqual([1])
  })

  describe('withdrawal (Workload API §5.2.1)', () => {
    const denied = () =>
      new WorkloadApiError('ERR_NO_IDENTITY', 'no identity issued', status.PERMISSION_DENIED)

    it('is set when the stream ends with PERMISSION_DENIED after a value, and cleared by the next value', () => {
      const value = new WatchedValue<number>('numbers')
      const w = fakeWatch<number>()
      const reported: IdentityError[] = []
      value.start(w.start, (e) => reported.push(e))
      w.push(1)
      expect(value.withdrawal).toBeUndefined()
      const end = denied()
      w.fail(end)
      expect(value.withdrawal).toMatchObject({ code: 'ERR_NO_IDENTITY', cause: end })
      expect(reported).toEqual([end])
      w.push(2)
      expect(value.withdrawal).toBeUndefined()
      expect(value.value).toBe(2)
    })

    it('is not set by other failures, nor before the first value', () => {
      const value = new WatchedValue<number>('numbers')
      const w = fakeWatch<number>()
      value.start(w.start, undefined)
      w.fail(denied())
      expect(value.withdrawal).toBeUndefined()
      w.push(1)
      w.fail(new WorkloadApiError('ERR_WORKLOAD_API_UNAVAILABLE', 'agent down', status.UNAVAILABLE))
      w.fail(new IdentityError('ERR_NO_IDENTITY', 'a message that did not parse'))
      w.fail(new IdentityError('ERR_WORKLOAD_API_RESPONSE_INVALID', 'an empty bundle'))
      expect(value.withdrawal).toBeUndefined()
      expect(value.value).toBe(1)
    })
  })

  it('stop stops the watch and forgets listeners', () => {
    const value = new WatchedValue<number>('numbers')
    const w = fakeWatch<number>()
    value.start(w.start, undefined)
    const seen: number[] = []
    value.onUpdate((n) => seen.push(n))
    value.stop()
    expect(w.isStopped()).toBe(true)
    w.push(3)
    expect(seen).toEqual([])
  })
})
