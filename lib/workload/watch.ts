import type { StatusObject } from '@grpc/grpc-js'
import type { IdentityError } from '../core/errors.js'
import { type Backoff, isRetryableStatus, LinearBackoff, realScheduler, type Scheduler } from './backoff.js'
import { streamFailure, toWorkloadApiError, WorkloadApiError } from './workload-api-error.js'

/**
 * The part of a grpc-js `ClientReadableStream` a watch uses: messages (`data`), the failure
 * (`error`, always followed by `status`), the final `status`, and `cancel()`.
 * @example
 * const stream: MessageStream = grpcClient.FetchJWTBundles({}, securityMetadata())
 */
export interface MessageStream {
  on(event: 'data', listener: (message: unknown) => void): unknown
  on(event: 'error', listener: (err: unknown) => void): unknown
  on(event: 'status', listener: (end: StatusObject) => void): unknown
  cancel(): void
}

/**
 * A running watch of a Workload API stream.
 * @example
 * const watch: Watch = client.watchX509Context(console.log, console.error)
 * watch.stop()
 * await watch.done // undefined
 */
export interface Watch {
  /** Stops watching: cancels the open stream and any pending retry. Safe to call more than once. */
  stop(): void
  /** Settles when the watch ends: `undefined` after {@link Watch.stop}, the error when it ended for good. */
  readonly done: Promise<IdentityError | undefined>
}

/**
 * What {@link watchStream} needs.
 * @example
 * watchStream({ method: 'FetchJWTBundles', open, onMessage, onError, backoff: new LinearBackoff() })
 */
export interface WatchOptions<M> {
  /** The RPC name, for error messages (`FetchX509SVID`). */
  readonly method: string
  /** Opens the stream (again after each failure). */
  open(): MessageStream
  /** Handles one message. What it throws is reported through `onError`; the stream keeps being read. */
  onMessage(message: M): void
  /** Every failure: a message that did not parse, a stream that failed and will be retried, the final one. */
  onError(err: IdentityError): void
  /** Defaults to go-spiffe's linear 1 s … 30 s. */
  readonly backoff?: Backoff
  /** Defaults to the real timers. */
  readonly scheduler?: Scheduler
}

/**
 * Keeps a Workload API stream open the way go-spiffe does (spec §2.5): every message goes to
 * `onMessage` and resets the backoff; when the stream fails or ends it is opened again after the
 * backoff's delay (1 s, 2 s … 30 s), or after the wait a Tessera agent asked for in its retry hint
 * (`WorkloadApiError.retryAfterMs`), unless the status is final (INVALID_ARGUMENT, UNIMPLEMENTED; see
 * `isRetryableStatus`). {@link Watch.stop} cancels the stream; that cancellation ends the watch
 * without being reported.
 * @example
 * const watch = watchStream<X509SVIDResponse__Output>({
 *   method: 'FetchX509SVID',
 *   open: () => grpcClient.FetchX509SVID({}, securityMetadata()),
 *   onMessage: (message) => console.log(message.svids.length),
 *   onError: (err) => console.error(err.code, err.message),
 * })
 * watch.stop()
 */
export function watchStream<M>(options: WatchOptions<M>): Watch {
  const watch = new StreamWatch(options)
  watch.attempt()
  return watch
}

/** One watch: the open stream or the pending retry, and how it ends. */
class StreamWatch<M> implements Watch {
  readonly done: Promise<IdentityError | undefined>
  readonly #options: WatchOptions<M>
  readonly #backoff: Backoff
  readonly #scheduler: Scheduler
  #stream: MessageStream | undefined
  #timer: unknown
  #isStopped = false
  #finish: (err: IdentityError | undefined) => void = () => {}

  constructor(options: WatchOptions<M>) {
    this.#options = options
    this.#backoff = options.backoff ?? new LinearBackoff()
    this.#scheduler = options.scheduler ?? realScheduler
    this.done = new Promise((resolve) => {
      this.#finish = resolve
    })
  }

  /** Opens the stream; a failure to even open it is retried like any other. */
  attempt(): void {
    this.#timer = undefined
    if (this.#isStopped) return
    const report = (err: IdentityError) => this.#report(err)
    try {
      this.#stream = listen(this.#options, this.#backoff, report, (err) => this.#retryOrEnd(err))
    } catch (err) {
      this.#retryOrEnd(toWorkloadApiError(err, this.#options.method))
    }
  }

  stop(): void {
    if (this.#isStopped) return
    this.#isStopped = true
    if (this.#timer !== undefined) this.#scheduler.clearTimeout(this.#timer)
    this.#stream?.cancel()
    this.#finish(undefined)
  }

  #report(err: IdentityError): void {
    try {
      this.#options.onError(err)
    } catch {
      // a listener that throws must not break the watch
    }
  }

  #retryOrEnd(err: IdentityError): void {
    this.#stream = undefined
    if (this.#isStopped) return
    this.#report(err)
    if (err instanceof WorkloadApiError && !isRetryableStatus(err.status)) {
      this.#isStopped = true
      this.#finish(err)
      return
    }
    // The agent's hint, when it gave one, replaces the backoff's delay (a pending approval is
    // retried soon; a throttled caller waits as long as it is told).
    const hintMs = err instanceof WorkloadApiError ? err.retryAfterMs : undefined
    this.#timer = this.#scheduler.setTimeout(() => this.attempt(), hintMs ?? this.#backoff.nextDelayMs())
  }
}

/** Opens one stream and wires its events; `onEnd` runs once, when its status arrives. */
function listen<M>(
  options: WatchOptions<M>,
  backoff: Backoff,
  report: (err: IdentityError) => void,
  onEnd: (err: IdentityError) => void,
): MessageStream {
  const stream = options.open()
  let isEnded = false
  let error: unknown
  stream.on('data', (message) => {
    if (isEnded) return
    backoff.reset()
    try {
      options.onMessage(message as M)
    } catch (err) {
      report(toWorkloadApiError(err, options.method))
    }
  })
  stream.on('error', (err) => {
    error = err
  })
  stream.on('status', (end) => {
    if (isEnded) return
    isEnded = true
    onEnd(streamFailure(options.method, error, end))
  })
  return stream
}
