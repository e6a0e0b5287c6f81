import type { BenchResult } from '../harness.js'
import { runLoad } from './children.js'
import type { GatewayLoadFigures, GatewayLoadTarget, GatewayLoadTask } from './gateway-http.js'

/** Each target's best of 2 interleaved rounds: warm-up 0.5 s (1 s in the first), then 3 s measured. */
const ROUNDS = { rounds: 2, warmupMs: 500, measureMs: 3000 }
const CONCURRENCIES = [1, 16] as const

/** One concurrency's figures, by target name, and that concurrency in words (`16 clients`). */
export interface HttpLoadRound {
  figuresOf(name: string): GatewayLoadFigures
  readonly clients: string
  /** Requests failed and retried, every target and round together. */
  readonly errors: number
}

/** Where the `gateway-http` load child gets its tokens: the bench stack's Workload API. */
export interface HttpLoadIdentity {
  readonly socketPath: string
  readonly trustDomain: string
  readonly audience: string
}

/**
 * Runs the `gateway-http` load child on `targets` at 1 and then 16 keep-alive clients, and turns each
 * concurrency's report into rows with `rowsAt`.
 */
export async function measureHttpLoad(
  targets: readonly GatewayLoadTarget[],
  identity: HttpLoadIdentity,
  rowsAt: (round: HttpLoadRound) => BenchResult[],
): Promise<BenchResult[]> {
  const rows: BenchResult[] = []
  for (const concurrency of CONCURRENCIES) {
    const task: GatewayLoadTask = {
      targets,
      concurrency,
      ...ROUNDS,
      endpoint: `unix://${identity.socketPath}`,
      audience: identity.audience,
      trustDomain: identity.trustDomain,
    }
    const report = await runLoad<Partial<Record<string, GatewayLoadFigures>>>('gateway-http', task)
    const figuresOf = (name: string) => {
      const f = report[name]
      if (!f) throw new Error(`the gateway load child measured no ${name}`)
      return f
    }
    const clients = `${concurrency} client${concurrency === 1 ? '' : 's'}`
    const errors = Object.values(report).reduce((n, f) => n + (f?.errors ?? 0), 0)
    rows.push(...rowsAt({ figuresOf, clients, errors }))
  }
  return rows
}
