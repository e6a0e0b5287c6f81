import { request } from 'node:http'
import { join } from 'node:path'
import { callAdmin } from '../cli/admin-client.js'
import type { RevokeSvidResponse__Output } from '../common/gen/tessera/admin/v1/RevokeSvidResponse.js'
import { TaskClient } from '../lib/workload/task-client.js'
import { WorkloadClient } from '../lib/workload/workload-client.js'
import type { BenchResult } from './harness.js'
import { plainRow } from './load/rows.js'
import { type BenchStack, type Child, type HttpFront, startBenchStack, startHttpFront } from './stack.js'

const AUDIENCE = 'revocation.bench'
const SAMPLES = 20
/** A sample that takes longer than this is counted as this (and the target is then missed). */
const GIVE_UP_MS = 10_000

/** `tessera gateway` with no upstream: an allowed request gets 502, a refused one 401. */
async function startGateway(stack: BenchStack): Promise<HttpFront> {
  const args = ['--listen', '127.0.0.1:0', '--upstream', `unix://${join(stack.dir, 'none.sock')}`]
  args.push('--audience', AUDIENCE, '--socket', `unix://${stack.socketPath}`, '--throttle-failures', '1000')
  args.push('--audit-log-path', join(stack.dir, 'gateway-revocation-audit.log'))
  return await startHttpFront('gateway', args)
}

function statusOf(port: number, token: string, taskToken?: string): Promise<number> {
  const headers = {
    authorization: `Bearer ${token}`,
    ...(taskToken !== undefined && { 'txn-token': taskToken }),
  }
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', headers, agent: false }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    req.end()
  })
}

function jtiOf(token: string): string {
  return (JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { jti: string })
    .jti
}

/** One sample: a fresh JWT-SVID accepted, revoked by its jti, then asked again until refused. */
async function sample(stack: BenchStack, client: WorkloadClient, port: number): Promise<number> {
  const { token } = await client.fetchJwtSvid({ audience: AUDIENCE })
  if ((await statusOf(port, token)) === 401) throw new Error('a fresh JWT-SVID was refused')
  const started = performance.now()
  await callAdmin<RevokeSvidResponse__Output>(stack.admin, (o, cb) =>
    stack.admin.revocations.RevokeSvid({ jti: jtiOf(token), reason: 'bench' }, o, cb),
  )
  while ((await statusOf(port, token)) !== 401) {
    if (performance.now() - started > GIVE_UP_MS) return GIVE_UP_MS
  }
  return performance.now() - started
}

/**
 * One sample: a fresh task begun through the agent, its token accepted beside the caller's JWT-SVID,
 * then EndTask through the agent, and the token asked again until refused.
 */
async function taskSample(tasks: TaskClient, token: string, port: number): Promise<number> {
  const task = await tasks.beginTask({
    audiences: [AUDIENCE],
    scopes: ['bench:run'],
    purpose: 'bench',
    ttlMs: 300_000,
  })
  if ((await statusOf(port, token, task.token)) === 401) throw new Error('a fresh task token was refused')
  const started = performance.now()
  await tasks.endTask(task.taskId)
  while ((await statusOf(port, token, task.token)) !== 401) {
    if (performance.now() - started > GIVE_UP_MS) return GIVE_UP_MS
  }
  return performance.now() - started
}

/** The p50 and p99 rows of `delays` (sorted here), the p99 against the 1 s target. */
function delayRows(what: string, delays: number[]): BenchResult[] {
  delays.sort((a, b) => a - b)
  const p99 = percentile(delays, 99)
  return [
    plainRow(`${what}, p50 (${delays.length} samples)`, percentile(delays, 50), 'ms'),
    plainRow(`${what}, p99 (${delays.length} samples)`, p99, 'ms', ['< 1000 ms', p99 < 1000]),
  ]
}

function percentile(sorted: ReadonlyArray<number>, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN
}

/**
 * Revocation → refused at `tessera gateway` (DESIGN §11, issue 8): from the admin's RevokeSvid call
 * until the gateway answers 401 for the revoked JWT-SVID (server → sync stream → agent → the
 * gateway's WatchRevocations stream), and from EndTask through the agent until it answers 401 for
 * the ended task's token (agent → server → the same way back), over {@link SAMPLES} of each, one
 * after another.
 */
export async function benchRevocation(): Promise<BenchResult[]> {
  const stack = await startBenchStack('bench-revocation.local', ['--begin-task-per-second', '100000'])
  let gateway: { child: Child; port: number } | undefined
  const client = WorkloadClient.connect({ endpoint: `unix://${stack.socketPath}` })
  const tasks = TaskClient.connect({ endpoint: stack.socketPath })
  try {
    gateway = await startGateway(stack)
    const delays: number[] = []
    for (let i = 0; i < SAMPLES; i++) delays.push(await sample(stack, client, gateway.port))
    const { token } = await client.fetchJwtSvid({ audience: AUDIENCE })
    const taskDelays: number[] = []
    for (let i = 0; i < SAMPLES; i++) taskDelays.push(await taskSample(tasks, token, gateway.port))
    return [
      ...delayRows('revocation → refused at the gateway', delays),
      ...delayRows('task end → task token refused at the gateway', taskDelays),
    ]
  } finally {
    tasks.close()
    client.close()
    await gateway?.child.stop()
    await stack.stop()
  }
}
