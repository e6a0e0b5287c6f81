import { readFileSync } from 'node:fs'
import { Agent, request as httpRequest, type OutgoingHttpHeaders } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { TrustDomain } from '../../lib/core/trust-domain.js'
import { mtlsClientOptions } from '../../lib/tls/index.js'
import { authorizeMemberOf } from '../../lib/verify/authorizer.js'
import { JwtSource } from '../../lib/workload/jwt-source.js'
import { proofHeaders } from '../../lib/workload/proof-fetch.js'
import { WitSource } from '../../lib/workload/wit-source.js'
import { X509Source } from '../../lib/workload/x509-source.js'
import { quantile, report, runChild, taskOf } from './common.js'

/**
 * `direct`: plain HTTP to the upstream; `jwt`: HTTP with a bearer JWT-SVID; `mtls`: HTTPS with an
 * X509-SVID; `wit`: HTTP with a WIT-SVID and a Workload Proof Token signed for each request.
 */
export type GatewayLoadKind = 'direct' | 'jwt' | 'mtls' | 'wit'

/** One target on 127.0.0.1; `pid` is the process that serves it, whose CPU time per request is measured. */
export interface GatewayLoadTarget {
  readonly name: string
  readonly kind: GatewayLoadKind
  readonly port: number
  readonly pid: number
}

/**
 * What {@link main} measures: GET requests on `concurrency` keep-alive connections per target, one in
 * flight on each, back to back. The targets take turns `rounds` times; each keeps its best round.
 */
export interface GatewayLoadTask {
  readonly targets: ReadonlyArray<GatewayLoadTarget>
  readonly concurrency: number
  readonly rounds: number
  readonly warmupMs: number
  readonly measureMs: number
  /** The Workload API (`unix:///…`) the JWT-SVID and the X509-SVID come from. */
  readonly endpoint: string
  readonly audience: string
  readonly trustDomain: string
}

/** What a gateway load child prints for each target (by name). */
export interface GatewayLoadFigures {
  readonly requestsPerSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly requests: number
  readonly cpuUsPerRequest: number
  /** Failed requests over all rounds (each retried at once), and the first one. */
  readonly errors: number
  readonly firstError?: string
}

type Send = () => Promise<void>
type Window = Omit<GatewayLoadFigures, 'errors' | 'firstError'>
interface Failures {
  count: number
  first?: string
}

const MAX_ERRORS = 100

/** CPU time (user + system) a process has used, in µs; `/proc/<pid>/stat` counts in ticks of 10 ms. */
function cpuUsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
  return (Number(fields[11]) + Number(fields[12])) * 10_000
}

function sender(
  port: number,
  headers: OutgoingHttpHeaders | (() => Promise<OutgoingHttpHeaders>),
  agent: Agent | HttpsAgent,
): Send {
  const make = agent instanceof HttpsAgent ? httpsRequest : httpRequest
  const options = { host: '127.0.0.1', port, path: '/bench', agent }
  return async () => {
    const sent = typeof headers === 'function' ? await headers() : headers
    return new Promise((resolve, reject) => {
      const req = make({ ...options, headers: sent }, (res) => {
        res.resume()
        res.once('end', () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`)),
        )
        res.once('error', reject)
      })
      req.once('error', reject)
      req.end()
    })
  }
}

interface Credentials {
  readonly jwt: JwtSource
  readonly x509: X509Source
  readonly wits: WitSource
  readonly token: string
}

/** `concurrency` senders for `target`, each on its own keep-alive connection. */
function sendersFor(task: GatewayLoadTask, target: GatewayLoadTarget, creds: Credentials): Send[] {
  const host = `127.0.0.1:${target.port}`
  return Array.from({ length: task.concurrency }, () => {
    const pool = { keepAlive: true, maxSockets: 1 }
    if (target.kind === 'direct') return sender(target.port, { host }, new Agent(pool))
    if (target.kind === 'jwt')
      return sender(target.port, { host, authorization: `Bearer ${creds.token}` }, new Agent(pool))
    if (target.kind === 'wit') {
      const url = `http://${host}/bench`
      const headers = async () => ({ host, ...(await proofHeaders(creds.wits, url, 'GET')) })
      return sender(target.port, headers, new Agent(pool))
    }
    const tls = mtlsClientOptions(creds.x509, authorizeMemberOf(TrustDomain.parse(task.trustDomain)))
    return sender(target.port, { host }, new HttpsAgent({ ...pool, ...tls }))
  })
}

/** One window: every sender busy for `warmupMs`, then `measureMs` counted (requests that end inside it). */
async function runWindow(
  task: GatewayLoadTask,
  w: { senders: Send[]; pid: number; warmupMs: number; failures: Failures },
) {
  const latencies: number[] = []
  const from = performance.now() + w.warmupMs
  const until = from + task.measureMs
  // CPU time is read when the window opens and once every request has ended, then divided by the
  // requests that ended in between (a few past `until`: each worker finishes the one it is in).
  let cpuFrom: number | undefined
  const timer = setTimeout(() => {
    cpuFrom = cpuUsOf(w.pid)
  }, w.warmupMs)
  let endedSinceFrom = 0
  const worker = async (send: Send) => {
    while (performance.now() < until) {
      const t0 = performance.now()
      try {
        await send()
      } catch (err) {
        w.failures.count += 1
        w.failures.first ??= err instanceof Error ? err.message : String(err)
        if (w.failures.count > MAX_ERRORS) throw err
        continue
      }
      const t1 = performance.now()
      if (t1 >= from) endedSinceFrom += 1
      if (t1 >= from && t1 <= until) latencies.push(t1 - t0)
    }
  }
  await Promise.all(w.senders.map(worker))
  clearTimeout(timer)
  const cpuUs = cpuFrom === undefined ? Number.NaN : cpuUsOf(w.pid) - cpuFrom
  const sorted = Float64Array.from(latencies).sort()
  const figures: Window = {
    requestsPerSecond: (latencies.length * 1000) / task.measureMs,
    p50Ms: quantile(sorted, 0.5),
    p99Ms: quantile(sorted, 0.99),
    requests: latencies.length,
    cpuUsPerRequest: cpuUs / Math.max(1, endedSinceFrom),
  }
  return figures
}

/**
 * Child process: fetches a JWT-SVID for `audience`, an X509-SVID and a WIT-SVID from the agent, opens the
 * connections, runs the interleaved rounds and prints the best round of each target (highest rate)
 * as `{ name: GatewayLoadFigures }`.
 */
async function main(): Promise<void> {
  const task = taskOf<GatewayLoadTask>()
  const [jwt, x509, wits] = await Promise.all([
    JwtSource.create({ endpoint: task.endpoint }),
    X509Source.create({ endpoint: task.endpoint }),
    WitSource.create({ endpoint: task.endpoint }),
  ])
  try {
    const { token } = await jwt.fetchJwtSvid({ audience: [task.audience] })
    const senders = task.targets.map((t) => sendersFor(task, t, { jwt, x509, wits, token }))
    const best: Array<Window | undefined> = []
    const failures = task.targets.map((): Failures => ({ count: 0 }))
    for (let round = 0; round < task.rounds; round++) {
      for (const [i, target] of task.targets.entries()) {
        const warmupMs = task.warmupMs * (round === 0 ? 2 : 1)
        const window = {
          senders: senders[i] ?? [],
          pid: target.pid,
          warmupMs,
          failures: failures[i] as Failures,
        }
        const f = await runWindow(task, window)
        if (f.requestsPerSecond > (best[i]?.requestsPerSecond ?? -1)) best[i] = f
      }
    }
    const figures: Record<string, GatewayLoadFigures> = {}
    for (const [i, target] of task.targets.entries()) {
      const { count, first } = failures[i] as Failures
      const kept = best[i]
      if (kept)
        figures[target.name] = {
          ...kept,
          errors: count,
          ...(first === undefined ? {} : { firstError: first }),
        }
    }
    report(figures)
  } finally {
    jwt.close()
    x509.close()
    wits.close()
  }
}

runChild(main)
