import { request } from 'node:http'
import { join } from 'node:path'
import { callAdmin } from '../cli/admin-client.js'
import type { RevokeSvidResponse__Output } from '../common/gen/tessera/admin/v1/RevokeSvidResponse.js'
import { WorkloadClient } from '../lib/workload/workload-client.js'
import type { BenchResult } from './harness.js'
import { plainRow } from './load/rows.js'
import { type BenchStack, type Child, CLI_PATH, spawnNode, startBenchStack, waitForOutput } from './stack.js'

const AUDIENCE = 'revocation.bench'
const SAMPLES = 20
/** A sample that takes longer than this is counted as this (and the target is then missed). */
const GIVE_UP_MS = 10_000

/** `tessera gateway` with no upstream: an allowed request gets 502, a refused one 401. */
async function startGateway(stack: BenchStack): Promise<{ child: Child; port: number }> {
  const args = ['gateway', '--listen', '127.0.0.1:0', '--upstream', `unix://${join(stack.dir, 'none.sock')}`]
  args.push('--audience', AUDIENCE, '--socket', `unix://${stack.socketPath}`, '--throttle-failures', '1000')
  args.push('--audit-log-path', join(stack.dir, 'gateway-revocation-audit.log'))
  const child = spawnNode(CLI_PATH, args)
  try {
    const ready = await waitForOutput(child, /"listen":"[^"]*:(\d+)".*"gateway ready"/)
    return { child, port: Number(ready[1]) }
  } catch (err) {
    await child.stop()
    throw err
  }
}

function statusOf(port: number, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/', headers: { authorization: `Bearer ${token}` }, agent: false },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      },
    )
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

function percentile(sorted: ReadonlyArray<number>, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN
}

/**
 * Revocation → refused at `tessera gateway` (DESIGN §11, issue 8): from the admin's RevokeSvid call
 * until the gateway answers 401 for the revoked JWT-SVID (server → sync stream → agent → the
 * gateway's WatchRevocations stream), over {@link SAMPLES} tokens one after another.
 */
export async function benchRevocation(): Promise<BenchResult[]> {
  const stack = await startBenchStack('bench-revocation.local')
  let gateway: { child: Child; port: number } | undefined
  const client = WorkloadClient.connect({ endpoint: `unix://${stack.socketPath}` })
  try {
    gateway = await startGateway(stack)
    const delays: number[] = []
    for (let i = 0; i < SAMPLES; i++) delays.push(await sample(stack, client, gateway.port))
    delays.sort((a, b) => a - b)
    const p99 = percentile(delays, 99)
    return [
      plainRow(`revocation → refused at the gateway, p50 (${SAMPLES} samples)`, percentile(delays, 50), 'ms'),
      plainRow(`revocation → refused at the gateway, p99 (${SAMPLES} samples)`, p99, 'ms', [
        '< 1000 ms',
        p99 < 1000,
      ]),
    ]
  } finally {
    client.close()
    await gateway?.child.stop()
    await stack.stop()
  }
}
