import { status } from '@grpc/grpc-js'
import { IdentityError } from '../core/errors.js'
import { realScheduler, type Scheduler } from './backoff.js'
import type { Watch } from './watch.js'
import { WorkloadApiError } from './workload-api-error.js'
import { WorkloadClient, type WorkloadClientOptions } from './workload-client.js'

/**
 * Options every source takes.
 * @example
 * const options: SourceOptions = { endpoint: 'unix:///run/tessera/api.sock', timeoutMs: 5000, onError: console.error }
 */
export interface SourceOptions extends Pick<WorkloadClientOptions, 'endpoint' | 'newBackoff' | 'clock'> {
  /** A client to use (the source then does not close it); default a client of `endpoint`. */
  readonly client?: WorkloadClient
  /** How long `create` waits for the first update; default 30 s; `Infinity` waits for ever. */
  readonly timeoutMs?: number
  /** Told of every failure: messages that did not parse, streams that will be retried. */
  readonly onError?: (err: IdentityError) => void
  /** Timers for the watches and the first-update wait; default the real ones. */
  readonly scheduler?: Scheduler
}

/**
 * How long a source's `create` waits for its first update unless told otherwise.
 * @example
 * await X509Source.create({ timeoutMs: DEFAULT_FIRST_UPDATE_TIMEOUT_MS * 2 })
 */
export const DEFAULT_FIRST_UPDATE_TIMEOUT_MS = 30_000

/**
 * The client a source uses, and whether the source owns (and so closes) it.
 * @throws ERR_ENDPOINT_INVALID
 * @example
 * const { client, ownsClient } = sourceClient({ endpoint: 'unix:///run/tessera/api.sock' })
 */
export function sourceClient(options: SourceOptions): { client: WorkloadClient; ownsClient: boolean } {
  if (options.client) return { client: options.client, ownsClient: false }
  const { endpoint, newBackoff, clock, scheduler } = options
  return {
    client: WorkloadClient.connect({
      endpoint,
      ...(newBackoff && { newBackoff }),
      ...(clock && { clock }),
      ...(scheduler && { scheduler }),
    }),
    ownsClient: true,
  }
}

/**
 * The latest value of one watched Workload API stream: it tells listeners of each new value and
 * lets a source's `create` wait for the first one. When the stream ends with PERMISSION_DENIED after
 * a value (Workload API §5.2.1: the agent withdrew the identity and redacted what it had sent), the
 * value is withdrawn ({@link WatchedValue.withdrawal}) until the next one arrives.
 * @example
 * const bundles = new WatchedValue<BundleSet>('JWT bundles')
 * bundles.start((onUpdate, onError) => client.watchJwtBundles(onUpdate, onError), console.error)
 * await bundles.ready(5000)
 */
export class WatchedValue<T> {
  readonly #what: string
  readonly #listeners = new Set<(value: T) => void>()
  #value: T | undefined
  #lastError: IdentityError | undefined
  #withdrawal: IdentityError | undefined
  #watch: Watch | undefined
  #resolveFirst: () => void = () => {}
  readonly #first = new Promise<void>((resolve) => {
    this.#resolveFirst = resolve
  })

  /** `what` names the value in errors (`X.509 context`). */
  constructor(what: string) {
    this.#what = what
  }

  /** The latest value, undefined before the first update. */
  get value(): T | undefined {
    return this.#value
  }

  /**
   * Set (ERR_NO_IDENTITY, the stream's PERMISSION_DENIED error as `cause`) once the stream has ended
   * with PERMISSION_DENIED after a value; undefined again as soon as a new value arrives.
   */
  get withdrawal(): IdentityError | undefined {
    return this.#withdrawal
  }

  /** Starts the watch; each update replaces the value (a full snapshot) and is passed to every listener. */
  start(
    watch: (onUpdate: (value: T) => void, onError: (err: IdentityError) => void) => Watch,
    onError: ((err: IdentityError) => void) | undefined,
  ): void {
    this.#watch = watch(
      (value) => this.#set(value),
      (err) => {
        this.#lastError = err
        if (this.#value !== undefined && isPermissionDenied(err))
          this.#withdrawal = this.#withdrawalError(err)
        onError?.(err)
      },
    )
  }

  /** Calls `listener` with every later value; returns the function that unsubscribes it. */
  onUpdate(listener: (value: T) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /**
   * Resolves at the first value; rejects when the watch ends for good first (with its error) or after
   * `timeoutMs` (ERR_WORKLOAD_API_UNAVAILABLE, the last failure as `cause`).
   */
  ready(timeoutMs: number, scheduler: Scheduler = realScheduler): Promise<void> {
    const watch = this.#watch
    if (watch === undefined) return Promise.reject(new Error('start() was not called'))
    let timer: unknown
    const timedOut = new Promise<never>((_, reject) => {
      if (!Number.isFinite(timeoutMs)) return
      timer = scheduler.setTimeout(() => reject(this.#timeoutError(timeoutMs)), timeoutMs)
    })
    const ended = watch.done.then((err) => {
      throw err ?? new IdentityError('ERR_WORKLOAD_API_UNAVAILABLE', `the ${this.#what} watch was stopped`)
    })
    return Promise.race([this.#first, timedOut, ended]).finally(() => {
      if (timer !== undefined) scheduler.clearTimeout(timer)
    })
  }

  /** Stops the watch and forgets every listener. */
  stop(): void {
    this.#watch?.stop()
    this.#listeners.clear()
  }

  #withdrawalError(err: IdentityError): IdentityError {
    return new IdentityError(
      'ERR_NO_IDENTITY',
      `the agent withdrew this workload's ${this.#what} (the stream ended with PERMISSION_DENIED: ${err.message}); it is not handed out until the agent sends a new one`,
      { cause: err },
    )
  }

  #timeoutError(timeoutMs: number): IdentityError {
    const last = this.#lastError ? `; last failure: ${this.#lastError.message}` : ''
    return new IdentityError(
      'ERR_WORKLOAD_API_UNAVAILABLE',
      `no ${this.#what} from the Workload API within ${timeoutMs} ms${last}`,
      { cause: this.#lastError },
    )
  }

  /** Stores the value, then runs every listener; the first listener error is rethrown (and reported). */
  #set(value: T): void {
    this.#value = value
    this.#withdrawal = undefined
    this.#resolveFirst()
    let failure: unknown
    for (const listener of [...this.#listeners]) {
      try {
        listener(value)
      } catch (err) {
        failure ??= err
      }
    }
    if (failure !== undefined) throw failure
  }
}

/** A stream that ended with PERMISSION_DENIED: the agent no longer gives this workload an identity. */
function isPermissionDenied(err: IdentityError): boolean {
  return err instanceof WorkloadApiError && err.status === status.PERMISSION_DENIED
}
