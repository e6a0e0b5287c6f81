import { readFileSync } from 'node:fs'
import { type ClientReadableStream, credentials, type ServiceError, status } from '@grpc/grpc-js'
import type { SpiffeWorkloadAPIClient } from '../../lib/gen/SpiffeWorkloadAPI.js'
import {
  connectWorkload,
  EchoClient,
  OWN_CONNECTION,
  quantile,
  report,
  runChild,
  taskOf,
  workloadMetadata,
} from './common.js'

/** One kind of call: `echo` / `echo-stream` are the bare echo server's unary / first-stream-message call. */
export type RateKind = 'echo' | 'echo-stream' | 'x509' | 'jwt'

/** One target: `name` (default: the kind) keys its figures; `pid` is its server process, if known. */
export interface RateTarget {
  readonly kind: RateKind
  readonly socket: string
  readonly name?: string
  readonly pid?: number
}

/**
 * What {@link main} measures: each target's calls over its own `concurrency` connections, at most one
 * call in flight on each: back to back (closed loop), or paced to `callsPerSecond` in total, evenly
 * spread. The targets take turns, `rounds` times, so that noise from the rest of the machine falls
 * on all of them alike; each target's best round is kept (the highest rate, or when paced the lowest p99).
 */
export interface RateTask {
  readonly targets: ReadonlyArray<RateTarget>
  readonly concurrency: number
  readonly rounds: number
  /** Before each window; the first round warms up for twice as long. */
  readonly warmupMs: number
  readonly measureMs: number
  readonly callsPerSecond?: number
  /**
   * Take turns in the reverse order every other round, so that no target always follows the same
   * one (for figures compared round by round: see {@link RateFigures.rounds}).
   */
  readonly alternate?: boolean
}

/** One target's figures in one round's window. */
export interface RoundFigures {
  readonly callsPerSecond: number
  /**
   * The server's CPU time over the window and the calls it is divided by: /proc counts CPU time in
   * 10 ms ticks, so one short window's quotient is coarse; sums over many rounds are not.
   */
  readonly serverCpu?: { readonly us: number; readonly calls: number }
}

/** What a rate child prints for each target. */
export interface RateFigures {
  readonly callsPerSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly calls: number
  /** CPU time the target's server process used per call (all its threads), when its `pid` was given. */
  readonly serverCpuUsPerCall?: number
  /** Failed calls over all rounds (each is retried at once). */
  readonly errors: number
  /** The first failure, if any, as `code details`. */
  readonly firstError?: string
  /** Every round's window, in order, the kept one among them. */
  readonly rounds: ReadonlyArray<RoundFigures>
}

/** What a rate child prints: figures by target name. */
export type RateReport = Partial<Record<string, RateFigures>>

type Call = () => Promise<void>

const MAX_ERRORS = 100
const ECHO_PAYLOAD = Buffer.from('tessera workload api bench ping')

type Unary = (req: Buffer, cb: (err: ServiceError | null) => void) => void
type Streaming = (req: Buffer) => ClientReadableStream<Buffer>

async function echoCall(socket: string, streaming: boolean): Promise<Call> {
  const client = new EchoClient(`unix://${socket}`, credentials.createInsecure(), OWN_CONNECTION)
  await new Promise<void>((resolve, reject) =>
    client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())),
  )
  if (streaming) {
    const echo = (client['EchoStream'] as Streaming).bind(client)
    return firstMessage(
      () => echo(ECHO_PAYLOAD),
      () => true,
    )
  }
  const echo = (client['Echo'] as Unary).bind(client)
  return () => new Promise((resolve, reject) => echo(ECHO_PAYLOAD, (err) => (err ? reject(err) : resolve())))
}

/** A call that opens a stream and ends at its first message, then cancels the stream. */
function firstMessage<T>(open: () => ClientReadableStream<T>, isGood: (m: T) => boolean): Call {
  return () =>
    new Promise((resolve, reject) => {
      const stream = open()
      stream.on('data', (m: T) => {
        stream.cancel()
        if (isGood(m)) resolve()
        else reject(new Error('an unexpected first message'))
      })
      stream.on('error', (err: ServiceError) => {
        if (err.code !== status.CANCELLED) reject(err)
      })
    })
}

/** FetchX509SVID as a new stream whose first message ends the call (the stream is then cancelled). */
function x509Call(client: SpiffeWorkloadAPIClient): Call {
  return firstMessage(
    () => client.FetchX509SVID({}, workloadMetadata()),
    (m) => m.svids.length > 0,
  )
}

/** FetchJWTSVID for one fixed audience: served from the agent's JWT cache after the first call. */
function jwtCall(client: SpiffeWorkloadAPIClient): Call {
  return () =>
    new Promise((resolve, reject) =>
      client.FetchJWTSVID({ audience: ['bench'] }, workloadMetadata(), (err, res) =>
        err || !res?.svids.length ? reject(err ?? new Error('no JWT-SVID')) : resolve(),
      ),
    )
}

function describe(err: unknown): string {
  const e = err as Partial<ServiceError>
  return e.code === undefined ? String(err) : `${status[e.code]} ${e.details ?? ''}`
}

async function makeCall(kind: RateKind, socket: string): Promise<Call> {
  if (kind === 'echo' || kind === 'echo-stream') return echoCall(socket, kind !== 'echo')
  const client = await connectWorkload(socket)
  return kind === 'x509' ? x509Call(client) : jwtCall(client)
}

interface Failures {
  count: number
  first?: string
}

/** CPU time (user + system) a process has used, in µs; `/proc/<pid>/stat` counts in ticks of 10 ms. */
function cpuUsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
  return (Number(fields[11]) + Number(fields[12])) * 10_000
}

interface Window {
  readonly calls: ReadonlyArray<Call>
  /** The server process whose CPU time per call is measured, if any. */
  readonly pid?: number
  readonly warmupMs: number
  readonly failures: Failures
}

type WindowFigures = Omit<RateFigures, 'errors' | 'firstError' | 'rounds'> & Pick<RoundFigures, 'serverCpu'>

/** One window: every call kept in flight for `warmupMs`, then measured for `measureMs`. */
async function runWindow(task: RateTask, w: Window): Promise<WindowFigures> {
  const latencies: number[] = []
  let stop = false
  const start = performance.now()
  const from = start + w.warmupMs
  const until = from + task.measureMs
  // The server's CPU time is read when the window opens (a timer) and once every call has ended;
  // it is divided by the calls that ended between those two readings.
  let cpuFrom: { atMs: number; us: number } | undefined
  const ends: number[] = []
  const timer = setTimeout(() => {
    if (w.pid !== undefined) cpuFrom = { atMs: performance.now(), us: cpuUsOf(w.pid) }
  }, w.warmupMs)
  const intervalMs = task.callsPerSecond ? (1000 * w.calls.length) / task.callsPerSecond : 0
  const worker = async (call: Call, i: number) => {
    let next = start + (intervalMs * i) / w.calls.length
    while (!stop) {
      const wait = next - performance.now()
      next = Math.max(next + intervalMs, performance.now())
      if (intervalMs > 0 && wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
      const t0 = performance.now()
      try {
        await call()
      } catch (err) {
        w.failures.count += 1
        w.failures.first ??= describe(err)
        if (w.failures.count > MAX_ERRORS) throw err
        continue
      }
      const t1 = performance.now()
      ends.push(t1)
      if (t1 >= from && t1 <= until) latencies.push(t1 - t0)
      if (t1 > until || next > until) stop = true
    }
  }
  await Promise.all(w.calls.map((call, i) => worker(call, i)))
  clearTimeout(timer)
  const sorted = Float64Array.from(latencies).sort()
  const figures: WindowFigures = {
    callsPerSecond: (latencies.length * 1000) / task.measureMs,
    p50Ms: quantile(sorted, 0.5),
    p99Ms: quantile(sorted, 0.99),
    calls: latencies.length,
  }
  if (w.pid === undefined || cpuFrom === undefined) return figures
  const since = cpuFrom.atMs
  const calls = Math.max(1, ends.filter((t) => t >= since).length)
  const us = cpuUsOf(w.pid) - cpuFrom.us
  return { ...figures, serverCpuUsPerCall: us / calls, serverCpu: { us, calls } }
}

/**
 * Child process: opens `concurrency` connections per target, runs the rounds, and prints a
 * {@link RateReport} over the calls that ended inside each window (latency: from call start to
 * the first response).
 */
async function main(): Promise<void> {
  const task = taskOf<RateTask>()
  const calls = await Promise.all(
    task.targets.map((t) =>
      Promise.all(Array.from({ length: task.concurrency }, () => makeCall(t.kind, t.socket))),
    ),
  )
  const paced = task.callsPerSecond !== undefined
  const best: Array<WindowFigures | undefined> = []
  const failures = task.targets.map((): Failures => ({ count: 0 }))
  const rounds = task.targets.map((): RoundFigures[] => [])
  for (let round = 0; round < task.rounds; round++) {
    const order = [...calls.keys()]
    if (task.alternate && round % 2 === 1) order.reverse()
    for (const i of order) {
      const targetCalls = calls[i] as Call[]
      const warmupMs = task.warmupMs * (round === 0 ? 2 : 1)
      const window = {
        calls: targetCalls,
        pid: task.targets[i]?.pid,
        warmupMs,
        failures: failures[i] as Failures,
      }
      const f = await runWindow(task, window)
      const { callsPerSecond, serverCpu } = f
      rounds[i]?.push({ callsPerSecond, ...(serverCpu === undefined ? {} : { serverCpu }) })
      const kept = best[i]
      if (!kept || (paced ? f.p99Ms < kept.p99Ms : f.callsPerSecond > kept.callsPerSecond)) best[i] = f
    }
  }
  const figures: RateReport = {}
  for (const [i, { kind, name }] of task.targets.entries()) {
    const { count, first } = failures[i] as Failures
    const kept = best[i]
    if (kept) {
      const { serverCpu: _perRound, ...figuresOfKept } = kept
      figures[name ?? kind] = {
        ...figuresOfKept,
        errors: count,
        ...(first === undefined ? {} : { firstError: first }),
        rounds: rounds[i] ?? [],
      }
    }
  }
  report(figures)
}

runChild(main)
