import { type ServiceError, status } from '@grpc/grpc-js'
import { pino } from 'pino'
import { expect } from 'vitest'
import type { ServerClient, SyncSnapshot } from '../../agent/server-client/server-client.js'
import type { SyncStream } from '../../agent/server-client/sync-stream.js'
import { errorCodeOf } from '../../lib/grpc/status.js'

/** A logger that writes nothing. */
export const SILENT_LOG = pino({ level: 'silent' })

/** Fast reconnection for tests. */
export const TEST_BACKOFF = { initialMs: 50, maxMs: 500, jitter: 0.2 } as const

/** Records what a sync stream delivers, and waits for a snapshot or a refusal. */
export class SyncRecorder {
  readonly snapshots: Array<{ snapshot: SyncSnapshot; atMs: number }> = []
  refusal: ServiceError | undefined
  readonly stream: SyncStream
  #waiters: Array<() => void> = []

  constructor(client: ServerClient) {
    this.stream = client.sync({
      onSnapshot: (snapshot) => {
        this.snapshots.push({ snapshot, atMs: performance.now() })
        this.#wake()
      },
      onRefused: (err) => {
        this.refusal = err
        this.#wake()
      },
    })
  }

  /** The first snapshot (from `from` on) that passes `test`, within `timeoutMs`. */
  async next(
    test: (s: SyncSnapshot) => boolean,
    from = 0,
    timeoutMs = 5000,
  ): Promise<{ snapshot: SyncSnapshot; atMs: number }> {
    const found = await this.#until(() => this.snapshots.slice(from).find((s) => test(s.snapshot)), timeoutMs)
    if (!found)
      throw new Error(`no matching snapshot within ${timeoutMs} ms (${this.snapshots.length} received)`)
    return found
  }

  /** The refusal, within `timeoutMs`. */
  async refused(timeoutMs = 5000): Promise<ServiceError> {
    const err = await this.#until(() => this.refusal, timeoutMs)
    if (!err) throw new Error(`the stream was not refused within ${timeoutMs} ms`)
    return err
  }

  async #until<T>(probe: () => T | undefined, timeoutMs: number): Promise<T | undefined> {
    const deadline = performance.now() + timeoutMs
    for (let value = probe(); ; value = probe()) {
      if (value !== undefined) return value
      const left = deadline - performance.now()
      if (left <= 0) return undefined
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w()
  }
}

/** Asserts that `promise` rejects with gRPC status `code` (and the stable `errorCode` when given). */
export async function expectRefused(
  promise: Promise<unknown>,
  code: status,
  errorCode?: string,
): Promise<ServiceError> {
  const err = (await promise.then(
    () => {
      throw new Error(`expected gRPC status ${status[code]}, but the call succeeded`)
    },
    (e: unknown) => e,
  )) as ServiceError
  expect({ code: err.code, errorCode: errorCode === undefined ? undefined : errorCodeOf(err) }).toEqual({
    code,
    errorCode,
  })
  return err
}
