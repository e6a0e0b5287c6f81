import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { callAdmin } from '../cli/admin-client.js'
import type { CreateJoinTokenResponse__Output } from '../common/gen/tessera/admin/v1/CreateJoinTokenResponse.js'
import type { SvidIssued } from '../common/log/audit-log.js'
import type { PinoAuditLog } from '../common/log/pino-audit-log.js'
import type { BenchResult } from './harness.js'
import type { AuditAgentDone, AuditAgentReady, AuditAgentTask } from './load/audit-agent.js'
import { type AuditWriting, openBenchAuditLog } from './load/audit-logs.js'
import { type HeldLoad, holdLoad, runLoad } from './load/children.js'
import { fetchFirstX509 } from './load/common.js'
import type { RateFigures, RateReport, RateTarget, RateTask } from './load/rate.js'
import { comparedRow, plainRow, round } from './load/rows.js'
import { type BenchStack, startBenchStack } from './stack.js'

/** Issue 7: the chain may cost the cached FetchJWTSVID rate at most 5 %. */
const MIN_RATIO = 0.95
const CLIENTS = 64
/**
 * 20 short rounds, the agents taking turns in an order reversed every other round (warm-up 0.15 s,
 * 0.3 s in the first, then 0.4 s measured): the two agents' windows of one round are adjacent, so
 * the ratio of their rates in each round sees the same machine; the target is on the median of
 * those, which a busy machine moves far less than it moves any one window (best-of-N per agent
 * compares windows seconds apart).
 */
const ROUNDS = { rounds: 20, warmupMs: 150, measureMs: 400, alternate: true }
/** The direct write measure: each writer's best of 7 interleaved rounds, each on a fresh file. */
const WRITE_ROUNDS = 7
const WRITE_WARMUP_RECORDS = 5_000
const WRITE_RECORDS = 20_000
const WRITINGS = ['chained', 'unchained'] as const satisfies ReadonlyArray<AuditWriting>

/** The line every served FetchJWTSVID writes on the agent, as jwt-handlers.ts builds it. */
const SVID_ISSUED: SvidIssued = {
  spiffeId: 'spiffe://bench.local/bench/workload',
  kind: 'jwt',
  entryId: '0b6f2c3e-5d1a-4f7e-9c2b-8a4d6e1f3b5c',
  audience: ['bench'],
  ttlMs: 299_000,
  caller: { kind: 'workload', pid: 123_456, uid: 1000, gid: 1000, exe: '/usr/local/bin/node' },
}

/** CPU time (user + system) this process spends on `records` calls of `op`, in µs per call. */
function cpuUsPerCall(op: () => unknown, records: number): number {
  const from = process.cpuUsage()
  for (let i = 0; i < records; i++) op()
  const used = process.cpuUsage(from)
  return (used.user + used.system) / records
}

/**
 * CPU µs per `svid.issued` record written through the chained and the unchained writer
 * ({@link openBenchAuditLog}) to a file in a temp dir, on this thread: the recorder, pino's
 * serialisation and the `write(2)` are common to both; the difference is the chain (`seq`/`prev`, the
 * line's SHA-256, its RFC 6962 leaf hash, the Merkle frontier). No signer is set, so no checkpoint
 * is signed (one per 1000 lines in an agent). CPU time, not wall time: a busy machine that takes the
 * core away between two records does not count.
 */
async function benchRecordWrite(): Promise<{ rows: BenchResult[]; chainUs: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-bench-audit-'))
  const best = new Map<AuditWriting, number>()
  const write = (log: PinoAuditLog) => () => log.svidIssued(SVID_ISSUED)
  try {
    for (let round = 0; round < WRITE_ROUNDS; round++) {
      for (const writing of WRITINGS) {
        const path = join(dir, `${writing}-${round}.log`)
        const log = openBenchAuditLog(path, writing)
        try {
          cpuUsPerCall(write(log), WRITE_WARMUP_RECORDS)
          const us = cpuUsPerCall(write(log), WRITE_RECORDS)
          best.set(writing, Math.min(best.get(writing) ?? Number.POSITIVE_INFINITY, us))
        } finally {
          log.close()
          await rm(path, { force: true })
        }
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  const [chained, unchained] = [best.get('chained') ?? Number.NaN, best.get('unchained') ?? Number.NaN]
  const rows = [
    comparedRow('audit: CPU per svid.issued record written to a file, chained vs unchained', {
      value: chained,
      baseline: unchained,
      unit: 'µs/record',
      digits: 2,
    }),
    plainRow('  the chain per record (difference)', chained - unchained, 'µs/record'),
  ]
  return { rows, chainUs: chained - unchained }
}

/** A second agent of the stack's server under its alias (so it serves the same entry), in a child. */
async function startAuditAgent(stack: BenchStack, writing: AuditWriting): Promise<HeldLoad<AuditAgentReady>> {
  const token = await callAdmin<CreateJoinTokenResponse__Output>(stack.admin, (o, cb) =>
    stack.admin.joinTokens.CreateJoinToken({ alias_spiffe_id: stack.agentAlias }, o, cb),
  )
  const task: AuditAgentTask = {
    writing,
    dataDir: join(stack.dir, `agent-${writing}`),
    serverAddress: stack.serverAddress,
    trustDomain: stack.trustDomain,
    bundlePath: stack.bundlePath,
    joinToken: token.token,
  }
  const agent = await holdLoad<AuditAgentReady>('audit-agent', task)
  try {
    await fetchFirstX509(agent.ready.socket)
    return agent
  } catch (err) {
    await agent.finish()
    throw err
  }
}

async function measureRates(targets: ReadonlyArray<RateTarget>): Promise<Map<string, RateFigures>> {
  // One unmeasured round first, so that no agent is measured while its code still compiles.
  const warm: RateTask = { targets, concurrency: 16, rounds: 1, warmupMs: 1000, measureMs: 200 }
  await runLoad<RateReport>('rate', warm)
  const report = await runLoad<RateReport>('rate', { targets, concurrency: CLIENTS, ...ROUNDS })
  const rates = new Map<string, RateFigures>()
  for (const { name } of targets) {
    const f = name === undefined ? undefined : report[name]
    if (!f) throw new Error(`the rate child measured no ${name}`)
    rates.set(name as string, f)
  }
  return rates
}

/** The median of `xs` (the mean of the middle two when their number is even). */
function median(xs: ReadonlyArray<number>): number {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1
    ? (sorted[mid] ?? Number.NaN)
    : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2
}

/** The agent's CPU time per call over every round (a window alone holds few 10 ms ticks). */
function cpuOf(f: RateFigures): number {
  const sum = (pick: (cpu: { us: number; calls: number }) => number) =>
    f.rounds.reduce((n, r) => n + (r.serverCpu ? pick(r.serverCpu) : Number.NaN), 0)
  return sum((c) => c.us) / sum((c) => c.calls)
}

function rateRows(rates: Map<string, RateFigures>): BenchResult[] {
  const get = (name: string) => rates.get(name) as RateFigures
  const [chained, unchained, cli] = [get('chained'), get('unchained'), get('cli')]
  const pairedRatios = (f: RateFigures, base: RateFigures) =>
    f.rounds.map((r, i) => r.callsPerSecond / (base.rounds[i]?.callsPerSecond ?? NaN))
  const ratios = pairedRatios(chained, unchained)
  const ratio = round(median(ratios), 3)
  const control = round(median(pairedRatios(cli, chained)), 3)
  const perSecond = (f: RateFigures, base: RateFigures) => ({
    value: f.callsPerSecond,
    baseline: base.callsPerSecond,
    unit: 'calls/s',
    digits: 0,
  })
  const rows: BenchResult[] = [
    comparedRow(
      `agent: FetchJWTSVID (cached), ${CLIENTS} clients, audit chained vs unchained (best round of each)`,
      perSecond(chained, unchained),
    ),
    {
      name: `  chained ÷ unchained round by round, median of ${ratios.length} rounds`,
      value: ratio,
      unit: '',
      baseline: null,
      ratio,
      target: `≥ ${MIN_RATIO}`,
      met: ratio >= MIN_RATIO,
    },
  ]
  const cpu = { value: cpuOf(chained), baseline: cpuOf(unchained), unit: 'µs' }
  if (Number.isFinite(cpu.value) && Number.isFinite(cpu.baseline))
    rows.push(comparedRow('  agent CPU per call (all rounds), chained vs unchained', cpu))
  rows.push({
    name: '  control, same code: `tessera agent run` ÷ the chained bench agent, median round by round',
    value: control,
    unit: '',
    baseline: null,
    ratio: control,
  })
  return rows
}

/**
 * What the audit hash chain (DESIGN §10) costs the agent per call. Every served FetchJWTSVID writes
 * one `svid.issued` line, so the cached FetchJWTSVID rate at 64 clients is measured on two agents
 * of one server that differ only in their audit writer: both run the real agent app (`startAgent`)
 * in a bench child, one with the log `tessera agent run` opens (chained), one with the same file
 * writer and no chain. The baseline is built in bench code on purpose: a product flag to turn the
 * chain off would be one more way to lose the audit trail, and the only way to measure the agent
 * without the chain otherwise would be a second build. The stack's own `tessera agent run` is
 * measured in the same rounds, as a control: it runs the same code as the chained child, so its
 * ratio to it shows that the child performs like the CLI agent, and how far from 1 the rest of the
 * machine puts a ratio in this run (on a busy 2-core machine, farther than 5 %). Then the write
 * itself, CPU µs per record, chained and not, on a file in a temp dir, and the rate ratio it implies.
 */
export async function benchAuditChain(): Promise<BenchResult[]> {
  const stack = await startBenchStack('bench-audit.local')
  const rows: BenchResult[] = []
  let rates: Map<string, RateFigures> | undefined
  try {
    const [chained, unchained] = [
      await startAuditAgent(stack, 'chained'),
      await startAuditAgent(stack, 'unchained'),
    ]
    try {
      const target = (name: string, agent: HeldLoad<AuditAgentReady>): RateTarget => ({
        kind: 'jwt',
        name,
        ...agent.ready,
      })
      rates = await measureRates([
        // The chained agent in the middle: next to each of the others in every round.
        target('unchained', unchained),
        target('chained', chained),
        { kind: 'jwt', name: 'cli', socket: stack.socketPath, pid: stack.agent.pid },
      ])
    } finally {
      const done = await Promise.all([chained.finish<AuditAgentDone>(), unchained.finish<AuditAgentDone>()])
      if (rates) checkAudited(rates, done)
    }
    rows.push(...rateRows(rates))
  } finally {
    await stack.stop()
  }
  const write = await benchRecordWrite()
  rows.push(...write.rows)
  // An agent that is busy serving spends its CPU time on calls: one more record write per call costs
  // it the chain's µs on top of its CPU per call without the chain. This ratio moves far less with
  // the rest of the machine than the rates do; it is printed beside the measured one, not instead.
  const unchainedCpu = cpuOf(rates.get('unchained') as RateFigures)
  if (Number.isFinite(unchainedCpu)) {
    const implied = round(unchainedCpu / (unchainedCpu + write.chainUs), 3)
    rows.push({
      name: '  rate ratio the write cost implies: unchained agent CPU per call ÷ (it + the chain per record)',
      value: implied,
      unit: '',
      baseline: null,
      ratio: implied,
    })
  }
  return rows
}

/** Both agents must have audited every call they served (a baseline that skips the write proves nothing). */
function checkAudited(rates: Map<string, RateFigures>, done: ReadonlyArray<AuditAgentDone>): void {
  for (const [i, name] of WRITINGS.entries()) {
    const served = rates.get(name)?.calls ?? 0
    const lines = done[i]?.auditLines ?? 0
    if (lines < served)
      throw new Error(`the ${name} agent wrote ${lines} audit lines for at least ${served} calls served`)
  }
}
