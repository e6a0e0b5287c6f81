import { join } from 'node:path'
import { callAdmin } from '../cli/admin-client.js'
import type { CreateJoinTokenResponse__Output } from '../common/gen/tessera/admin/v1/CreateJoinTokenResponse.js'
import type { BenchResult } from './harness.js'
import { runLoad } from './load/children.js'
import { fetchFirstX509 } from './load/common.js'
import type { RateFigures, RateKind, RateReport, RateTask } from './load/rate.js'
import { comparedRow } from './load/rows.js'
import { type BenchStack, type Child, CLI_PATH, spawnNode, startBenchStack, waitForOutput } from './stack.js'

/** Each target's best of 3 interleaved rounds, as the Workload API rates are measured. */
const ROUNDS = { rounds: 3, warmupMs: 250, measureMs: 800 }
const NAMES = { x509: 'FetchX509SVID first response', jwt: 'FetchJWTSVID (cached)' } as const
/** DESIGN §6.1: the binding checks may cost at most 10 % of the rate. */
const MIN_RATIO = 0.9

/**
 * A second agent of the bench stack's server, under the same alias (so it serves the same entry),
 * started with the bench-only flag that turns the DESIGN §6.1 connection binding off.
 */
async function startUnboundAgent(stack: BenchStack): Promise<{ child: Child; socket: string }> {
  const token = await callAdmin<CreateJoinTokenResponse__Output>(stack.admin, (o, cb) =>
    stack.admin.joinTokens.CreateJoinToken({ alias_spiffe_id: stack.agentAlias }, o, cb),
  )
  const dataDir = join(stack.dir, 'agent-unbound')
  const child = spawnNode(CLI_PATH, [
    'agent',
    'run',
    '--data-dir',
    dataDir,
    '--trust-domain',
    stack.trustDomain,
    '--log-level',
    'info',
    '--server-address',
    stack.serverAddress,
    '--trust-bundle',
    stack.bundlePath,
    '--join-token',
    token.token,
    '--unsafe-bench-no-binding-checks',
  ])
  try {
    await waitForOutput(child, /"agent ready"/)
    const socket = join(dataDir, 'public', 'api.sock')
    await fetchFirstX509(socket)
    return { child, socket }
  } catch (err) {
    await child.stop()
    throw err
  }
}

/** One unmeasured round on both agents, so that neither is measured while its code still compiles. */
async function warmUp(...servers: ReadonlyArray<{ socket: string; pid: number }>): Promise<void> {
  const targets = servers.flatMap((s) => (['jwt', 'x509'] as const).map((kind) => ({ kind, ...s })))
  await runLoad<RateReport>('rate', { targets, concurrency: 16, rounds: 1, warmupMs: 1000, measureMs: 200 })
}

async function measure(
  bound: { socket: string; pid: number },
  unbound: { socket: string; pid: number },
  concurrency: number,
): Promise<BenchResult[]> {
  const kinds = ['jwt', 'x509'] as const satisfies ReadonlyArray<RateKind>
  const targets = kinds.flatMap((kind) => [
    { kind, name: `${kind}-bound`, ...bound },
    { kind, name: `${kind}-unbound`, ...unbound },
  ])
  const task: RateTask = { targets, concurrency, ...ROUNDS }
  const report = await runLoad<RateReport>('rate', task)
  const get = (name: string): RateFigures => {
    const f = report[name]
    if (!f) throw new Error(`the rate child measured no ${name}`)
    return f
  }
  const clients = `${concurrency} client${concurrency === 1 ? '' : 's'}`
  return kinds.flatMap((kind) => {
    const [on, off] = [get(`${kind}-bound`), get(`${kind}-unbound`)]
    const measured = { value: on.callsPerSecond, baseline: off.callsPerSecond, unit: 'calls/s', digits: 0 }
    const ratio = on.callsPerSecond / off.callsPerSecond
    const rows = [
      comparedRow(`agent: ${NAMES[kind]}, ${clients}, binding checks on vs off (DESIGN §6.1)`, measured, [
        `ratio ≥ ${MIN_RATIO}`,
        ratio >= MIN_RATIO,
      ]),
    ]
    if (on.serverCpuUsPerCall !== undefined && off.serverCpuUsPerCall !== undefined) {
      const cpu = { value: on.serverCpuUsPerCall, baseline: off.serverCpuUsPerCall, unit: 'µs', digits: 0 }
      rows.push(comparedRow(`  agent CPU per call, ${clients}, checks on vs off`, cpu))
    }
    return rows
  })
}

/**
 * What binding each Workload API connection to its process costs (DESIGN §6.1: the credential-
 * checking relay and the checks before every answer): cached FetchJWTSVID and FetchX509SVID first
 * responses at 1 and 64 clients on an agent with the checks, beside a second agent of the same server
 * without them (the bench-only flag), in the same run, rounds interleaved.
 */
export async function benchBindingCost(): Promise<BenchResult[]> {
  const stack = await startBenchStack('bench-binding.local')
  try {
    const unbound = await startUnboundAgent(stack)
    try {
      const on = { socket: stack.socketPath, pid: stack.agent.pid }
      const off = { socket: unbound.socket, pid: unbound.child.pid }
      await warmUp(on, off)
      return [...(await measure(on, off, 1)), ...(await measure(on, off, 64))]
    } finally {
      await unbound.child.stop()
    }
  } finally {
    await stack.stop()
  }
}
