import { status } from '@grpc/grpc-js'

/**
 * How long to wait before each retry of a Workload API stream.
 * @example
 * const backoff: Backoff = new LinearBackoff({ initialDelayMs: 100, maxDelayMs: 1000 })
 * const delayMs = backoff.nextDelayMs()
 */
export interface Backoff {
  /** The delay before the next attempt, in ms; each call counts one more failure. */
  nextDelayMs(): number
  /** Called after any message: the next failure waits the initial delay again. */
  reset(): void
}

/**
 * go-spiffe's linear backoff: 1 s, 2 s, 3 s … capped at 30 s.
 * @example
 * new LinearBackoff(DEFAULT_BACKOFF).nextDelayMs() // 1000
 */
export const DEFAULT_BACKOFF = Object.freeze({ initialDelayMs: 1000, maxDelayMs: 30_000 })

/**
 * A linear backoff like go-spiffe's: the n-th consecutive failure waits `n × initialDelayMs`, at most
 * `maxDelayMs`; {@link LinearBackoff.reset} starts again from the initial delay.
 * @example
 * const backoff = new LinearBackoff()
 * backoff.nextDelayMs() // 1000
 * backoff.nextDelayMs() // 2000
 * backoff.reset()
 * backoff.nextDelayMs() // 1000
 */
export class LinearBackoff implements Backoff {
  readonly #initialDelayMs: number
  readonly #maxDelayMs: number
  #failures = 0

  constructor(options: { initialDelayMs?: number; maxDelayMs?: number } = {}) {
    const { initialDelayMs = DEFAULT_BACKOFF.initialDelayMs, maxDelayMs = DEFAULT_BACKOFF.maxDelayMs } =
      options
    if (!(initialDelayMs >= 0) || !(maxDelayMs >= initialDelayMs))
      throw new RangeError('backoff delays must satisfy 0 <= initialDelayMs <= maxDelayMs')
    this.#initialDelayMs = initialDelayMs
    this.#maxDelayMs = maxDelayMs
  }

  nextDelayMs(): number {
    this.#failures += 1
    return Math.min(this.#failures * this.#initialDelayMs, this.#maxDelayMs)
  }

  reset(): void {
    this.#failures = 0
  }
}

/**
 * True when a stream that failed with this gRPC status should be opened again (spec §2.4–2.5):
 * INVALID_ARGUMENT (the agent refused the request itself) and UNIMPLEMENTED (the RPC does not exist)
 * are final; everything else — UNAVAILABLE, PERMISSION_DENIED (no identity *yet*), a stream the agent
 * ended, and a CANCELLED the client did not ask for (grpc-js servers reset open streams with CANCEL
 * when they shut down) — is retried. The client's own cancellation never reaches this check.
 * @example
 * isRetryableStatus(status.PERMISSION_DENIED) // true
 * isRetryableStatus(status.INVALID_ARGUMENT) // false
 */
export function isRetryableStatus(code: status): boolean {
  return code !== status.INVALID_ARGUMENT && code !== status.UNIMPLEMENTED
}

/**
 * Timers, injected so that tests drive retries without real sleeping.
 * @example
 * const scheduler: Scheduler = { setTimeout: (cb, ms) => setTimeout(cb, ms), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) }
 */
export interface Scheduler {
  setTimeout(callback: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

/**
 * The real timers.
 * @example
 * const handle = realScheduler.setTimeout(() => console.log('retry'), 1000)
 * realScheduler.clearTimeout(handle)
 */
export const realScheduler: Scheduler = Object.freeze({
  setTimeout: (callback: () => void, ms: number): unknown => setTimeout(callback, ms),
  clearTimeout: (handle: unknown): void => clearTimeout(handle as NodeJS.Timeout),
})
