import type { BenchResult } from '../harness.js'
import { runLoad } from './children.js'
import type { RateFigures, RateKind, RateReport, RateTask } from './rate.js'
import { comparedRow, plainRow } from './rows.js'

/** Each kind's best of 3 interleaved rounds (warm-up 0.25 s, 0.5 s in the first, then 0.8 s measured). */
const ROUNDS = { rounds: 3, warmupMs: 250, measureMs: 800 }
const MANY = 64
/** The paced load for the latency target: 64 clients, 1000 calls/s in all (~16/s each). */
const PACED_CALLS_PER_SECOND = 1000
const NAMES = { x509: 'FetchX509SVID first response', jwt: 'FetchJWTSVID (cached)' } as const

/** The servers measured: the bare echo child and the agent, each with its pid for CPU accounting. */
export interface RateServers {
  readonly echo: { readonly socket: string; readonly pid: number }
  readonly agent: { readonly socket: string; readonly pid: number }
}

type Rates = Map<string, RateFigures>
const keyOf = (kind: RateKind, concurrency: number, paced = false) =>
  `${kind}/${concurrency}${paced ? '/paced' : ''}`

async function measureRates(servers: RateServers): Promise<Rates> {
  const rates: Rates = new Map()
  const run = async (kinds: ReadonlyArray<RateKind>, concurrency: number, callsPerSecond?: number) => {
    const targets = kinds.map((kind) => ({
      kind,
      ...(kind.startsWith('echo') ? servers.echo : servers.agent),
    }))
    const task: RateTask = { targets, concurrency, ...ROUNDS, ...(callsPerSecond ? { callsPerSecond } : {}) }
    const report = await runLoad<RateReport>('rate', task)
    for (const kind of kinds) {
      const figures = report[kind]
      if (!figures) throw new Error(`the rate child measured no ${kind}`)
      rates.set(keyOf(kind, concurrency, callsPerSecond !== undefined), figures)
    }
  }
  for (const concurrency of [1, MANY]) await run(['echo', 'echo-stream', 'x509', 'jwt'], concurrency)
  await run(['echo', 'x509', 'jwt'], MANY, PACED_CALLS_PER_SECOND)
  return rates
}

const callsPerSecond = (name: string, f: RateFigures, base: RateFigures, minRatio?: number) => {
  const measured = { value: f.callsPerSecond, baseline: base.callsPerSecond, unit: 'calls/s', digits: 0 }
  const ratio = f.callsPerSecond / base.callsPerSecond
  return comparedRow(name, measured, minRatio ? [`ratio ≥ ${minRatio}`, ratio >= minRatio] : undefined)
}

const latency = (name: string, ms: number, baseMs: number, underMs?: number) =>
  comparedRow(
    name,
    { value: ms, baseline: baseMs, unit: 'ms', digits: 2 },
    underMs ? [`< ${underMs} ms`, ms < underMs] : undefined,
  )

function rowsAt(c: number, get: (kind: RateKind) => RateFigures): BenchResult[] {
  const rows: BenchResult[] = []
  const clients = `${c} client${c === 1 ? '' : 's'}`
  const echo = get('echo')
  for (const kind of ['x509', 'jwt'] as const) {
    const f = get(kind)
    const same = kind === 'x509' ? get('echo-stream') : echo
    const shape = kind === 'x509' ? 'stream' : 'unary'
    rows.push(callsPerSecond(`agent: ${NAMES[kind]}, ${clients}, vs bare grpc-js unary echo`, f, echo, 0.8))
    if (kind === 'x509')
      rows.push(callsPerSecond('  same vs bare grpc-js stream echo (its first message)', f, same))
    rows.push(latency(`  p50, ${clients}, vs echo`, f.p50Ms, same.p50Ms))
    rows.push(latency(`  p99, ${clients}, vs echo`, f.p99Ms, same.p99Ms, c === MANY ? 5 : undefined))
    if (f.serverCpuUsPerCall !== undefined && same.serverCpuUsPerCall !== undefined) {
      const cpu = { value: f.serverCpuUsPerCall, baseline: same.serverCpuUsPerCall, unit: 'µs', digits: 0 }
      rows.push(comparedRow(`  agent CPU per call, ${clients}, vs echo server per ${shape} call`, cpu))
    }
  }
  const reset = get('x509').errors
  rows.push(plainRow(`  FetchX509SVID calls failed and retried, ${clients} (all rounds)`, reset, 'calls'))
  return rows
}

/**
 * FetchX509SVID first responses and cached FetchJWTSVID at 1 and 64 clients (closed loop), each
 * beside the bare echo server at the same concurrency; then p99 at 64 clients paced below saturation.
 */
export async function benchRates(servers: RateServers): Promise<BenchResult[]> {
  const rates = await measureRates(servers)
  const get = (kind: RateKind, c: number, paced = false) => rates.get(keyOf(kind, c, paced)) as RateFigures
  const rows = [1, MANY].flatMap((c) => rowsAt(c, (kind) => get(kind, c)))
  const echo = get('echo', MANY, true)
  for (const kind of ['x509', 'jwt'] as const) {
    const name = `agent: ${NAMES[kind]} p99, ${MANY} clients paced to ${PACED_CALLS_PER_SECOND}/s in all, vs echo`
    rows.push(latency(name, get(kind, MANY, true).p99Ms, echo.p99Ms, 5))
  }
  return rows
}
