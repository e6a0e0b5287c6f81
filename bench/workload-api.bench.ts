import { join } from 'node:path'
import type { BenchResult } from './harness.js'
import type { AgentsReady, AgentsTask } from './load/agents.js'
import { holdLoad, runLoad } from './load/children.js'
import type { PropagationFigures, PropagationTask } from './load/propagation.js'
import { benchRates } from './load/rate-rows.js'
import { comparedRow, plainRow, rssTarget } from './load/rows.js'
import type { StreamsDone, StreamsReady, StreamsTask } from './load/streams.js'
import { type BenchStack, measureUp, rssOf, startBenchStack, waitForOutput } from './stack.js'

const STREAMS = { connections: 1000, perConnection: 1 }
const AGENTS = 100
const ENTRIES = 10_000
const under = (limitMs: number, ms: number) => [`< ${limitMs} ms`, ms < limitMs] as const

async function benchPropagation(stack: BenchStack): Promise<BenchResult> {
  const task: PropagationTask = {
    socket: stack.socketPath,
    adminSocket: stack.adminSocket,
    trustDomain: stack.trustDomain,
    parentId: stack.agentAlias,
    samples: 10,
  }
  const f = await runLoad<PropagationFigures>('propagation', task)
  const name = `agent: entry created → SVID on a waiting stream (median of ${f.samples})`
  return plainRow(name, f.medianMs, 'ms', under(1000, f.medianMs))
}

async function benchStreams(stack: BenchStack): Promise<BenchResult[]> {
  const idle = rssOf(stack.agent.pid)
  const awaitedId = `spiffe://${stack.trustDomain}/bench/streams-update`
  const task: StreamsTask = { socket: stack.socketPath, ...STREAMS, awaitedId }
  const held = await holdLoad<StreamsReady>('streams', task, 60_000)
  const n = held.ready.streams
  const rows = [
    plainRow(
      `agent: ${n} streams on ${STREAMS.connections} connections opened, all answered`,
      held.ready.openMs,
      'ms',
    ),
  ]
  try {
    const holding = rssOf(stack.agent.pid)
    const t0 = performance.now()
    await stack.createEntry('/bench/streams-update')
    await waitForOutput(held.child, /"updated":true/, 20_000)
    const fanOutMs = performance.now() - t0
    const peak = rssOf(stack.agent.pid).peakMib
    const rss = { value: holding.rssMib, baseline: idle.rssMib, unit: 'MiB' }
    rows.push(
      plainRow(`agent: entry created → SVID on all ${n} streams`, fanOutMs, 'ms', under(1000, fanOutMs)),
      comparedRow(`agent: RSS holding ${n} streams vs idle`, rss, rssTarget(300, holding.rssMib)),
      plainRow('agent: peak RSS (VmHWM) over the whole group', peak, 'MiB', rssTarget(300, peak)),
    )
  } catch (err) {
    await held.finish()
    throw err
  }
  const { errors } = await held.finish<StreamsDone>()
  return [...rows, plainRow(`agent: streams failed while held`, errors, 'streams', ['none', errors === 0])]
}

async function benchServer(stack: BenchStack): Promise<BenchResult[]> {
  const before = rssOf(stack.server.pid)
  const task: AgentsTask = {
    adminSocket: stack.adminSocket,
    serverAddress: stack.serverAddress,
    trustDomain: stack.trustDomain,
    bundlePath: stack.bundlePath,
    agents: AGENTS,
    entriesPerAgent: ENTRIES / AGENTS,
  }
  const held = await holdLoad<AgentsReady>('agents', task, 120_000)
  try {
    const now = rssOf(stack.server.pid)
    const f = held.ready
    const rss = { value: now.rssMib, baseline: before.rssMib, unit: 'MiB' }
    const setting = `${ENTRIES} entries, ${AGENTS} agents syncing`
    return [
      plainRow(`server: ${AGENTS} agents attested with join tokens (10 at a time)`, f.attestMs, 'ms'),
      plainRow(`server: ${ENTRIES} entries created (admin API, batches of 500)`, f.createMs, 'ms'),
      plainRow(`server: then every agent's sync stream holds its ${ENTRIES / AGENTS}`, f.syncedMs, 'ms'),
      comparedRow(`server: RSS with ${setting} vs before`, rss, rssTarget(250, now.rssMib)),
      plainRow(
        'server: peak RSS (VmHWM) over the whole group',
        now.peakMib,
        'MiB',
        rssTarget(250, now.peakMib),
      ),
    ]
  } finally {
    await held.finish()
  }
}

async function benchUp(): Promise<BenchResult[]> {
  const up = await measureUp()
  return [
    plainRow(
      'tessera up → first SVID (fresh dir; entry made once up prints)',
      up.freshMs,
      'ms',
      under(3000, up.freshMs),
    ),
    plainRow(
      'tessera up → first SVID (second start, state reused)',
      up.reusedMs,
      'ms',
      under(3000, up.reusedMs),
    ),
  ]
}

/**
 * The agent's Workload API over its Unix socket (DESIGN §8). Every load runs in a child process, so
 * no client shares an event loop with the agent or with the baseline, a bare grpc-js echo server in
 * its own child on the same kind of socket: FetchX509SVID first responses and cached FetchJWTSVID
 * at 1 and 64 clients; entry-to-stream latency; agent memory with 1000 open streams; server memory
 * with 10k entries and 100 agents; `tessera up` to a first SVID.
 */
export async function benchWorkloadApi(): Promise<BenchResult[]> {
  const results: BenchResult[] = []
  const stack = await startBenchStack()
  try {
    const socket = join(stack.dir, 'echo.sock')
    const echo = await holdLoad<{ pid: number }>('echo-server', { socket })
    try {
      const agent = { socket: stack.socketPath, pid: stack.agent.pid }
      results.push(...(await benchRates({ echo: { socket, pid: echo.ready.pid }, agent })))
    } finally {
      await echo.finish()
    }
    results.push(await benchPropagation(stack))
    results.push(...(await benchStreams(stack)))
    results.push(...(await benchServer(stack)))
  } finally {
    await stack.stop()
  }
  results.push(...(await benchUp()))
  return results
}
