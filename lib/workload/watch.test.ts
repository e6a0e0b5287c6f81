import { EventEmitter } from 'node:events'
import { Metadata, status } from '@grpc/grpc-js'
import { beforeAll, describe, expect, it } from 'vitest'
import { type IssuedTestSvid, TestCa } from '../../test/helpers/test-ca.js'
import { IdentityError } from '../core/errors.js'
import { exportPkcs8Der } from '../core/x509/private-key.js'
import type { X509SVIDResponse__Output } from '../gen/X509SVIDResponse.js'
import { DEFAULT_BACKOFF, isRetryableStatus, LinearBackoff, type Scheduler } from './backoff.js'
import { parseX509SvidResponse, type X509Context } from './responses.js'
import { type MessageStream, watchStream } from './watch.js'
import { WatchedValue } from './watched-value.js'
import { WorkloadApiError } from './workload-api-error.js'

/** A grpc-js-like server stream driven by the test. */
class FakeStream extends EventEmitter implements MessageStream {
  isCancelled = false
  send(message: unknown): void {
    this.emit('data', message)
  }
  fail(code: status, details = 'boom', metadata = new Metadata()): void {
    this.emit('error', Object.assign(new Error(details), { code, details, metadata }))
    this.emit('status', { code, details, metadata })
  }
  finish(): void {
    this.emit('status', { code: status.OK, details: '', metadata: new Metadata() })
  }
  cancel(): void {
    this.isCancelled = true
    this.fail(status.CANCELLED, 'Cancelled on client')
  }
}

/** Timers that run only when the test says so; records every delay asked for. */
class FakeScheduler implements Scheduler {
  readonly delays: number[] = []
  #pending = new Map<number, () => void>()
  #next = 0
  setTimeout(callback: () => void, ms: number): unknown {
    this.delays.push(ms)
    this.#pending.set(++this.#next, callback)
    return this.#next
  }
  clearTimeout(handle: unknown): void {
    this.#pending.delete(handle as number)
  }
  get pendingCount(): number {
    return this.#pending.size
  }
  runAll(): void {
    const due = [...this.#pending.values()]
    this.#pending.clear()
    for (const cb of due) cb()
  }
}

function startWatch(onMessage: (m: unknown) => void = () => {}) {
  const streams: FakeStream[] = []
  const errors: IdentityError[] = []
  const scheduler = new FakeScheduler()
  const watch = watchStream<unknown>({
    method: 'FetchX509SVID',
    open: () => {
      const s = new FakeStream()
      streams.push(s)
      return s
    },
    onMessage,
    onError: (err) => errors.push(err),
    scheduler,
  })
  const current = () => streams[streams.length - 1] as FakeStream
  return { watch, streams, errors, scheduler, current }
}

describe('LinearBackoff', () => {
  it('grows by 1 s up to 30 s, and starts again after reset', () => {
    const backoff = new LinearBackoff()
    const delays = Array.from({ length: 32 }, () => backoff.nextDelayMs())
    expect(delays.slice(0, 4)).toEqual([1000, 2000, 3000, 4000])
    expect(delays.slice(28)).toEqual([29_000, 30_000, 30_000, 30_000])
    expect(Math.max(...delays)).toBe(DEFAULT_BACKOFF.maxDelayMs)
    backoff.reset()
    expect(backoff.nextDelayMs()).toBe(1000)
  })

  it('takes other bounds and refuses impossible ones', () => {
    const backoff = new LinearBackoff({ initialDelayMs: 10, maxDelayMs: 25 })
    expect([backoff.nextDelayMs(), backoff.nextDelayMs(), backoff.nextDelayMs()]).toEqual([10, 20, 25])
    expect(() => new LinearBackoff({ initialDelayMs: 10, maxDelayMs: 5 })).toThrow(RangeError)
  })
})

describe('isRetryableStatus', () => {
  it.each([
    [status.UNAVAILABLE, true],
    [status.PERMISSION_DENIED, true],
    [status.UNKNOWN, true],
    [status.INTERNAL, true],
    [status.DEADLINE_EXCEEDED, true],
    [status.CANCELLED, true],
    [status.INVALID_ARGUMENT, false],
    [status.UNIMPLEMENTED, false],
  ])('status %i → %s', (code, expected) => {
    expect(isRetryableStatus(code)).toBe(expected)
  })
})

describe('watchStream', () => {
  it('delivers every message and keeps the stream open', () => {
    const seen: unknown[] = []
    const { current, streams, watch } = startWatch((m) => seen.push(m))
    current().send('a')
    current().send('b')
    expect(seen).toEqual(['a', 'b'])
    expect(streams).toHaveLength(1)
    watch.stop()
  })

  it('reports a message that fails to parse and keeps reading the stream', () => {
    const seen: unknown[] = []
    const { current, errors, streams, watch } = startWatch((m) => {
      if (m === 'bad') throw new IdentityError('ERR_X509_SVID_INVALID', 'bad message')
      seen.push(m)
    })
    current().send('bad')
    current().send('good')
    expect(seen).toEqual(['good'])
    expect(errors.map((e) => e.code)).toEqual(['ERR_X509_SVID_INVALID'])
    expect(streams).toHaveLength(1)
    watch.stop()
  })

  it.each([status.UNAVAILABLE, status.PERMISSION_DENIED, status.INTERNAL, status.CANCELLED])(
    'reopens after status %i with a linear backoff, reset by any message',
    (code) => {
      const { current, errors, scheduler, streams, watch } = startWatch()
      current().fail(code)
      current().fail(code) // a late event from the same stream is ignored
      expect(scheduler.delays).toEqual([1000])
      scheduler.runAll()
      current().fail(code)
      scheduler.runAll()
      current().fail(code)
      expect(scheduler.delays).toEqual([1000, 2000, 3000])
      scheduler.runAll()
      current().send('hello')
      current().fail(code)
      expect(scheduler.delays).toEqual([1000, 2000, 3000, 1000])
      expect(streams).toHaveLength(4)
      expect(errors.every((e) => e instanceof WorkloadApiError && e.status === code)).toBe(true)
      watch.stop()
    },
  )

  it('caps the delay at 30 s however long the agent stays away', () => {
    const { current, scheduler, watch } = startWatch()
    for (let i = 0; i < 40; i++) {
      current().fail(status.UNAVAILABLE)
      scheduler.runAll()
    }
    expect(Math.max(...scheduler.delays)).toBe(30_000)
    expect(scheduler.delays.slice(-3)).toEqual([30_000, 30_000, 30_000])
    watch.stop()
  })

  it("waits as long as the agent's retry hint says instead of the backoff, clamped to 100 ms … 60 s", () => {
    const { current, errors, scheduler, watch } = startWatch()
    const hinted = (ms: string) => {
      const metadata = new Metadata()
      metadata.set('tessera-retry-after-ms', ms)
      return metadata
    }
    // Two plain refusals grow the backoff to 2 s; a pending approval's hint of 500 ms then wins.
    for (let i = 0; i < 2; i++) {
      current().fail(status.PERMISSION_DENIED)
      scheduler.runAll()
    }
    for (const ms of ['500', '500', '7', '3600000', 'soon', '-5']) {
      current().fail(status.PERMISSION_DENIED, 'no identity issued', hinted(ms))
      scheduler.runAll()
    }
    // Without a hint the backoff goes on where it was; an unreadable hint is no hint.
    current().fail(status.PERMISSION_DENIED)
    expect(scheduler.delays).toEqual([1000, 2000, 500, 500, 100, 60_000, 3000, 4000, 5000])
    expect(errors.map((e) => (e as WorkloadApiError).retryAfterMs)).toEqual([
      undefined,
      undefined,
      500,
      500,
      100,
      60_000,
      undefined,
      undefined,
      undefined,
    ])
    watch.stop()
  })

  it('reopens a stream the agent ended cleanly', () => {
    const { current, errors, scheduler, watch } = startWatch()
    current().finish()
    expect(errors[0]?.code).toBe('ERR_WORKLOAD_API_UNAVAILABLE')
    expect(scheduler.delays).toEqual([1000])
    watch.stop()
  })

  it.each([status.INVALID_ARGUMENT, status.UNIMPLEMENTED])(
    'ends for good on status %i and reports it',
    async (code) => {
      const { current, errors, scheduler, streams, watch } = startWatch()
      current().fail(code)
      const end = await watch.done
      expect(end).toBeInstanceOf(WorkloadApiError)
      expect((end as WorkloadApiError).status).toBe(code)
      expect(errors).toEqual([end])
      expect(scheduler.pendingCount).toBe(0)
      expect(streams).toHaveLength(1)
    },
  )

  it('uses the error code the agent attached', () => {
    const { current, errors, watch } = startWatch()
    const metadata = new Metadata()
    metadata.set('tessera-error-code', 'ERR_ATTESTATION_FAILED')
    current().fail(status.UNAVAILABLE, 'workload attestation failed', metadata)
    expect(errors[0]?.code).toBe('ERR_ATTESTATION_FAILED')
    current().fail(status.PERMISSION_DENIED)
    watch.stop()
  })

  it('maps statuses to codes when the agent attached none', () => {
    const { current, errors, scheduler, watch } = startWatch()
    for (const code of [status.PERMISSION_DENIED, status.UNAVAILABLE, status.DEADLINE_EXCEEDED]) {
      current().fail(code)
      scheduler.runAll()
    }
    expect(errors.map((e) => e.code)).toEqual([
      'ERR_NO_IDENTITY',
      'ERR_WORKLOAD_API_UNAVAILABLE',
      'ERR_WORKLOAD_API_UNAVAILABLE',
    ])
    watch.stop()
  })

  it('stop cancels the open stream without reporting it', async () => {
    const { current, errors, watch } = startWatch()
    watch.stop()
    watch.stop()
    expect(current().isCancelled).toBe(true)
    expect(await watch.done).toBeUndefined()
    expect(errors).toEqual([])
  })

  it('stop during the backoff clears the retry', async () => {
    const { current, scheduler, streams, watch } = startWatch()
    current().fail(status.UNAVAILABLE)
    expect(scheduler.pendingCount).toBe(1)
    watch.stop()
    expect(scheduler.pendingCount).toBe(0)
    expect(await watch.done).toBeUndefined()
    expect(streams).toHaveLength(1)
  })

  it('retries when opening the stream throws', () => {
    let opens = 0
    const scheduler = new FakeScheduler()
    const errors: IdentityError[] = []
    const watch = watchStream({
      method: 'FetchJWTBundles',
      open: () => {
        opens += 1
        throw new Error('channel closed')
      },
      onMessage: () => {},
      onError: (err) => errors.push(err),
      scheduler,
    })
    scheduler.runAll()
    expect(opens).toBe(2)
    expect(errors.map((e) => e.code)).toEqual([
      'ERR_WORKLOAD_API_UNAVAILABLE',
      'ERR_WORKLOAD_API_UNAVAILABLE',
    ])
    watch.stop()
  })

  it('survives an onError listener that throws', () => {
    const scheduler = new FakeScheduler()
    const streams: FakeStream[] = []
    const watch = watchStream({
      method: 'FetchX509Bundles',
      open: () => {
        const s = new FakeStream()
        streams.push(s)
        return s
      },
      onMessage: () => {},
      onError: () => {
        throw new Error('listener bug')
      },
      scheduler,
    })
    streams[0]?.fail(status.UNAVAILABLE)
    scheduler.runAll()
    expect(streams).toHaveLength(2)
    watch.stop()
  })
})

describe('a watched X.509 context (what X509Source holds)', () => {
  let ca: TestCa
  let web: IssuedTestSvid
  beforeAll(async () => {
    ca = await TestCa.create('example.org')
    web = await ca.issue('spiffe://example.org/web')
  })
  const message = (bundle: Buffer) => ({
    svids: [
      {
        spiffe_id: web.svid.id.toString(),
        x509_svid: Buffer.concat(web.svid.certificates.map((c) => c.der)),
        x509_svid_key: exportPkcs8Der(web.svid.privateKey),
        bundle,
        hint: '',
      },
    ],
    crl: [],
    federated_bundles: {},
  })

  function startContextWatch() {
    const context = new WatchedValue<X509Context>('X.509 context')
    const reported: IdentityError[] = []
    let stream: FakeStream | undefined
    const scheduler = new FakeScheduler()
    context.start(
      (onUpdate, onError) =>
        watchStream<X509SVIDResponse__Output>({
          method: 'FetchX509SVID',
          open: () => {
            stream = new FakeStream()
            return stream
          },
          onMessage: (m) => onUpdate(parseX509SvidResponse(m)),
          onError,
          scheduler,
        }),
      (e) => reported.push(e),
    )
    return { context, reported, scheduler, current: () => stream as FakeStream }
  }

  it('discards a message whose required field holds its default: the previous context stays, the error is reported', () => {
    const { context, reported, current } = startContextWatch()
    current().send(message(ca.bundle.marshalDer()))
    const first = context.value
    expect(first?.bundles.getX509BundleForTrustDomain(web.svid.id.trustDomain)?.isEmpty).toBe(false)
    current().send(message(Buffer.alloc(0)))
    expect(context.value).toBe(first)
    expect(reported.map((e) => e.code)).toEqual(['ERR_WORKLOAD_API_RESPONSE_INVALID'])
    context.stop()
  })

  it('is withdrawn when the stream ends with PERMISSION_DENIED, until the reopened stream brings a context', () => {
    const { context, reported, scheduler, current } = startContextWatch()
    current().send(message(ca.bundle.marshalDer()))
    current().fail(status.PERMISSION_DENIED, 'no identity issued')
    expect(context.withdrawal?.code).toBe('ERR_NO_IDENTITY')
    expect(reported[0]).toMatchObject({ status: status.PERMISSION_DENIED })
    scheduler.runAll()
    current().send(message(ca.bundle.marshalDer()))
    expect(context.withdrawal).toBeUndefined()
    context.stop()
  })
})
