import { TaskClient } from '../lib/workload/task-client.js'
import { WorkloadClient } from '../lib/workload/workload-client.js'
import type { BenchResult } from './harness.js'
import { compare } from './harness.js'
import { startBenchStack } from './stack.js'

/** Calls per round, in flight at once, and rounds (the best is kept). */
const BATCH = 200
const CONCURRENCY = 8
const ROUNDS = 3

/** Runs `op` BATCH times, CONCURRENCY at a time; calls per second. */
async function rateOf(op: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < BATCH) await op(next++)
    }),
  )
  return (BATCH * 1000) / (performance.now() - t0)
}

/**
 * BeginTask through the agent (each a task token minted by the server) against FetchJWTSVID for a
 * fresh audience each call (each a JWT-SVID minted by the server, the agent's cache missed), in the
 * same run, interleaved rounds, best of each. The tasks of a round are ended before the next.
 */
export async function benchTasks(): Promise<BenchResult[]> {
  const stack = await startBenchStack('bench-tasks.local', ['--begin-task-per-second', '100000'])
  const tasks = TaskClient.connect({ endpoint: stack.socketPath })
  const jwts = WorkloadClient.connect({ endpoint: stack.socketPath })
  try {
    await jwts.fetchJwtSvid({ audience: 'warm-up' })
    const params = {
      audiences: ['https://bench.example'],
      scopes: ['bench:run'],
      purpose: 'bench',
      ttlMs: 300_000,
    }
    let begin = 0
    let mint = 0
    for (let round = 0; round < ROUNDS; round++) {
      const ids: string[] = []
      begin = Math.max(begin, await rateOf(async () => ids.push((await tasks.beginTask(params)).taskId)))
      for (const id of ids) await tasks.endTask(id)
      mint = Math.max(mint, await rateOf((i) => jwts.fetchJwtSvid({ audience: `aud-${round}-${i}` })))
    }
    return [
      compare(
        `agent: BeginTask (task token minted), ${CONCURRENCY} in flight, vs a JWT-SVID minted`,
        begin,
        mint,
      ),
    ]
  } finally {
    tasks.close()
    jwts.close()
    await stack.stop()
  }
}
