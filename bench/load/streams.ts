import type { ServiceError } from '@grpc/grpc-js'
import type { X509SVIDResponse__Output } from '../../lib/gen/X509SVIDResponse.js'
import { connectWorkload, report, runChild, taskOf, untilStdinEnds, workloadMetadata } from './common.js'

/** What {@link main} holds: `connections × perConnection` FetchX509SVID streams. */
export interface StreamsTask {
  readonly socket: string
  readonly connections: number
  readonly perConnection: number
  /** A SPIFFE ID registered after `ready`: `updated` is printed once every stream has received it. */
  readonly awaitedId: string
}

/** The first line a streams child prints: every stream has its first response. */
export interface StreamsReady {
  readonly streams: number
  readonly openMs: number
}

/** The last line: the stream failures seen while held. */
export interface StreamsDone {
  readonly errors: number
  readonly firstError?: string
}

/**
 * Child process: opens the streams (each connection its own socket, all connected first), prints
 * {@link StreamsReady} once all have a first response, `{"updated":true}` once all have seen
 * `awaitedId`, and {@link StreamsDone} when its stdin closes. The streams stay open until then.
 */
async function main(): Promise<void> {
  const task = taskOf<StreamsTask>()
  const total = task.connections * task.perConnection
  const clients = []
  for (let i = 0; i < task.connections; i++) clients.push(await connectWorkload(task.socket))
  const start = performance.now()
  let first = 0
  let updated = 0
  let errors = 0
  let firstError: string | undefined
  let allFirst: () => void = () => {}
  let failed: (err: Error) => void = () => {}
  const opened = new Promise<void>((resolve, reject) => {
    allFirst = resolve
    failed = reject
  })
  const streams = clients.flatMap((client) =>
    Array.from({ length: task.perConnection }, () => {
      const stream = client.FetchX509SVID({}, workloadMetadata())
      let seen = false
      let done = false
      stream.on('data', (m: X509SVIDResponse__Output) => {
        if (!seen) {
          seen = true
          first += 1
          if (first === total) allFirst()
        }
        if (!done && m.svids.some((s) => s.spiffe_id === task.awaitedId)) {
          done = true
          updated += 1
          if (updated === total) report({ updated: true })
        }
      })
      stream.on('error', (err: ServiceError) => {
        errors += 1
        firstError ??= `${err.code} ${err.details}`
        if (first < total) failed(new Error(`a stream failed before its first response: ${firstError}`))
      })
      return stream
    }),
  )
  await opened
  const ready: StreamsReady = { streams: total, openMs: performance.now() - start }
  report(ready)
  await untilStdinEnds()
  const figures: StreamsDone = {
    errors,
    ...(firstError === undefined ? {} : { firstError }),
  }
  for (const s of streams) s.cancel()
  report(figures)
}

runChild(main)
