import type { ServiceError } from '@grpc/grpc-js'
import { callAdmin, connectAdmin } from '../../cli/admin-client.js'
import type { X509SVIDResponse__Output } from '../../lib/gen/X509SVIDResponse.js'
import { workloadEntry } from '../stack.js'
import { connectWorkload, quantile, report, runChild, taskOf, workloadMetadata } from './common.js'

/** What {@link main} measures: `samples` entries created one after another under `parentId`. */
export interface PropagationTask {
  readonly socket: string
  readonly adminSocket: string
  readonly trustDomain: string
  readonly parentId: string
  readonly samples: number
}

/** What a propagation child prints, in ms from the CreateEntry call to the SVID on the stream. */
export interface PropagationFigures {
  readonly medianMs: number
  readonly minMs: number
  readonly maxMs: number
  readonly samples: number
}

/**
 * Child process: holds one FetchX509SVID stream (this process matches the new entries), and for
 * each sample creates an entry for this uid through the admin API and times how long until an
 * X509SVIDResponse on the stream carries its SPIFFE ID; prints {@link PropagationFigures}.
 */
async function main(): Promise<void> {
  const task = taskOf<PropagationTask>()
  const admin = connectAdmin(task.adminSocket)
  const client = await connectWorkload(task.socket)
  const stream = client.FetchX509SVID({}, workloadMetadata())
  let waiting: { id: string; resolve: () => void } | undefined
  let failure: ServiceError | undefined
  stream.on('data', (m: X509SVIDResponse__Output) => {
    if (waiting && m.svids.some((s) => s.spiffe_id === waiting?.id)) waiting.resolve()
  })
  stream.on('error', (err: ServiceError) => {
    failure = err
  })
  const took: number[] = []
  const tag = Date.now().toString(36)
  for (let i = 0; i < task.samples; i++) {
    const entry = workloadEntry(task.trustDomain, `/bench/propagation/${tag}/${i}`, task.parentId)
    const seen = new Promise<void>((resolve, reject) => {
      waiting = { id: entry.spiffe_id ?? '', resolve }
      setTimeout(() => reject(failure ?? new Error(`${entry.spiffe_id} not served within 10 s`)), 10_000)
    })
    const t0 = performance.now()
    await callAdmin(admin, (o, cb) => admin.entries.CreateEntry({ entry }, o, cb))
    await seen
    took.push(performance.now() - t0)
  }
  stream.cancel()
  admin.close()
  const sorted = Float64Array.from(took).sort()
  const figures: PropagationFigures = {
    medianMs: quantile(sorted, 0.5),
    minMs: sorted[0] ?? Number.NaN,
    maxMs: sorted.at(-1) ?? Number.NaN,
    samples: sorted.length,
  }
  report(figures)
}

runChild(main)
