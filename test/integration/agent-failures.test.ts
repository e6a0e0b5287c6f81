import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdir, readFile, readlink } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { status } from '@grpc/grpc-js'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { LinearBackoff } from '../../lib/workload/backoff.js'
import type { X509Context } from '../../lib/workload/responses.js'
import type { WorkloadApiError } from '../../lib/workload/workload-api-error.js'
import { X509Source } from '../../lib/workload/x509-source.js'
import { waitFor } from '../helpers/processes.js'
import { type ProbeResult, probe, type Stack, startStack } from '../helpers/stack.js'

const TD = 'tessera.local'
const uid = process.getuid?.() ?? 0
const WEB = `spiffe://${TD}/workload/web`
const LATER = `spiffe://${TD}/workload/later`
const REPO = fileURLToPath(new URL('../..', import.meta.url))

let stack: Stack

/** A fresh stack for the enclosing describe, with WEB registered for this uid. */
function useStack(): void {
  beforeAll(async () => {
    stack = await startStack({ trustDomain: TD })
    await stack.registerEntry({ spiffeId: WEB, selectors: [`unix:uid:${uid}`] })
  })
  afterAll(async () => {
    await stack?.stop()
  })
}

afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') console.error(stack?.output())
})

/** Probes until `accept` holds; returns the result and how long it took. */
async function probeUntil(args: string[], accept: (r: ProbeResult) => boolean, timeoutMs = 10_000) {
  const start = Date.now()
  let last: ProbeResult | undefined
  while (Date.now() - start < timeoutMs) {
    last = await probe(stack.socketPath, args)
    if (accept(last)) return { result: last, ms: Date.now() - start }
  }
  throw new Error(`no accepted answer to ${args.join(' ')} within ${timeoutMs} ms: ${JSON.stringify(last)}`)
}

/** VmRSS and VmHWM (peak) of a process, in MB. */
async function memoryOf(pid: number): Promise<{ rssMb: number; peakMb: number }> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8')
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1])
  return { rssMb: Math.round(kb('VmRSS') / 1024), peakMb: Math.round(kb('VmHWM') / 1024) }
}

/** How many sockets a process holds open. */
async function socketsOf(pid: number): Promise<number> {
  const fds = await readdir(`/proc/${pid}/fd`)
  const links = await Promise.all(fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')))
  return links.filter((l) => l.startsWith('socket:')).length
}

describe('server stopped', () => {
  useStack()

  it('the agent serves cached SVIDs and bundles, then reconnects and loses nothing', async () => {
    const { result: x509 } = await probeUntil(['x509'], (r) => r.ok)
    const jwt = await probe(stack.socketPath, ['jwt', 'aud-a', 'aud-b'])
    const jwks = await probe(stack.socketPath, ['jwt-bundles'])
    expect(jwt.ok && jwks.ok).toBe(true)

    await stack.stopServer()
    const stoppedAt = Date.now()
    const down = {
      x509: await probe(stack.socketPath, ['x509']),
      jwt: await probe(stack.socketPath, ['jwt', 'aud-a', 'aud-b']),
      jwks: await probe(stack.socketPath, ['jwt-bundles']),
      x509Bundles: await probe(stack.socketPath, ['x509-bundles']),
      valid: await probe(stack.socketPath, ['validate', 'aud-b', jwt.tokens?.[0] ?? '']),
    }
    expect(down.x509).toMatchObject({ ok: true, ids: [WEB], certs: x509.certs, bundle: x509.bundle })
    expect(down.jwt).toMatchObject({ ok: true, ids: [WEB], tokens: jwt.tokens })
    expect(down.jwks).toMatchObject({ ok: true, jwks: jwks.jwks })
    expect(down.x509Bundles).toMatchObject({ ok: true, trustDomains: [`spiffe://${TD}`] })
    expect(down.valid).toMatchObject({ ok: true, id: WEB })

    await stack.startServer()
    const backAt = Date.now()
    await stack.registerEntry({ spiffeId: LATER, selectors: [`unix:uid:${uid}`] })
    const createdAt = Date.now()
    const { result: after } = await probeUntil(['x509'], (r) => r.ids?.includes(LATER) === true)
    const sinceCreated = Date.now() - createdAt
    const sinceBack = Date.now() - backAt
    console.log(
      `server down ${backAt - stoppedAt} ms; back → new entry served ${sinceBack} ms (${sinceCreated} ms after create)`,
    )
    // The agent's sync stream backs off 0.5 s, 1 s, 2 s, 4 s… (±20%) while the server is down; how
    // soon it is back is printed above and measured by `npm run bench`, never asserted here.
    expect([...(after.ids ?? [])].sort()).toEqual([WEB, LATER].sort())
    expect(after.bundle).toBe(x509.bundle)
    const againJwt = await probe(stack.socketPath, ['jwt', 'aud-a', 'aud-b'])
    expect(againJwt.tokens?.length).toBe(2)
    expect(againJwt.tokens).toContain(jwt.tokens?.[0])
    expect(stack.agent().output()).toContain('Sync stream lost; reconnecting.')
  })

  // Regression: a JWT-SVID that must be minted while the server is down once failed with INTERNAL
  // (the server client's raw ServiceError reached toServiceError unmapped). Spec §2.4: UNAVAILABLE.
  it('a JWT-SVID for a new audience while the server is down is refused with UNAVAILABLE', async () => {
    await stack.stopServer()
    try {
      const fresh = await probe(stack.socketPath, ['jwt', 'never-asked-before'])
      expect(fresh).toMatchObject({
        ok: false,
        code: status.UNAVAILABLE,
        errorCode: 'ERR_WORKLOAD_API_UNAVAILABLE',
      })
    } finally {
      await stack.startServer()
    }
  })
})

describe('agent restarted', () => {
  useStack()

  it('re-attests with its persisted SVID, and an open X509Source stream gets SVIDs again', async () => {
    const failures: number[] = []
    const source = await X509Source.create({
      endpoint: `unix://${stack.socketPath}`,
      newBackoff: () => new LinearBackoff({ initialDelayMs: 100, maxDelayMs: 500 }),
      onError: (err) => failures.push((err as WorkloadApiError).status),
    })
    try {
      expect(source.getX509Svid().id.toString()).toBe(WEB)
      const old = stack.agent()
      const updated = new Promise<X509Context>((resolve) => {
        const off = source.onUpdate((c) => {
          off()
          resolve(c)
        })
      })
      await stack.restartAgent()
      const fresh = stack.agent().output()
      expect(old.output()).toContain('Agent attested with a join token.')
      expect(fresh).toContain('Agent SVID loaded from disk.')
      expect(fresh).not.toContain('Agent attested with a join token.')
      const agentId = (out: string) => /"spiffeId":"([^"]+)"[^\n]*"msg":"agent ready"/.exec(out)?.[1]
      expect(agentId(fresh)).toBe(agentId(old.output()))

      const context = await Promise.race([
        updated,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no update')), 10_000)),
      ])
      expect(context.svids.map((s) => s.id.toString())).toEqual([WEB])
      // The stream ended with UNAVAILABLE (go-spiffe stops for good on CANCELLED), as did reconnects.
      expect(failures[0]).toBe(status.UNAVAILABLE)
      expect(new Set(failures)).toEqual(new Set([status.UNAVAILABLE]))
    } finally {
      source.close()
    }
  })
})

/** One child process holding `channels × perChannel` FetchX509SVID streams; prints JSON lines. */
const HOLDER = `
import { credentials, Metadata } from '@grpc/grpc-js'
import { workloadApi } from './dist/common/grpc/protos.js'
const [socket, channels, perChannel, wanted] = process.argv.slice(-4)
const total = Number(channels) * Number(perChannel)
const say = (o) => process.stdout.write(JSON.stringify(o) + '\\n')
const md = new Metadata()
md.set('workload.spiffe.io', 'true')
let first = 0, updated = 0, errors = 0
for (let c = 0; c < Number(channels); c++) {
  // A local subchannel pool: each client gets its own connection.
  const client = new (workloadApi().SpiffeWorkloadAPI)('unix://' + socket, credentials.createInsecure(),
    { 'grpc.use_local_subchannel_pool': 1 })
  for (let s = 0; s < Number(perChannel); s++) {
    let seen = false, done = false
    const call = client.FetchX509SVID({}, md)
    call.on('data', (m) => {
      if (!seen && (seen = true) && ++first === total) say({ event: 'first' })
      if (!done && m.svids.some((v) => v.spiffe_id === wanted) && (done = true) && ++updated === total)
        say({ event: 'updated' })
    })
    call.on('error', (e) => { if (++errors <= 3) say({ event: 'error', code: e.code, details: e.details }) })
  }
}
setInterval(() => say({ event: 'progress', first, updated, errors }), 1000)
`

describe('1000 concurrent FetchX509SVID streams', () => {
  let holder: ChildProcess | undefined
  useStack()
  afterAll(async () => {
    if (holder && holder.exitCode === null && holder.signalCode === null) {
      holder.kill('SIGKILL')
      await once(holder, 'exit')
    }
  })

  it('all get a first response, then one entry change reaches all of them; the agent stays < 300 MB', async () => {
    await probeUntil(['x509'], (r) => r.ok)
    const agentPid = stack.agent().child.pid as number
    const idle = await memoryOf(agentPid)
    const idleSockets = await socketsOf(agentPid)
    const events: Array<Record<string, unknown>> = []
    const child = spawn(
      process.execPath,
      ['--input-type=module', '-e', HOLDER, stack.socketPath, '10', '100', LATER],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] },
    )
    holder = child
    createInterface({ input: child.stdout }).on('line', (line) => events.push(JSON.parse(line)))
    const saw = (event: string) => () => events.some((e) => e['event'] === event)
    const failFast = () => child.exitCode !== null || events.some((e) => e['event'] === 'error')
    const progress = () =>
      JSON.stringify(events.filter((e) => e['event'] !== 'progress').concat(events.at(-1) ?? {}))

    const openedAt = Date.now()
    await waitFor(saw('first'), { timeoutMs: 20_000, failFast }).catch((err: Error) => {
      throw new Error(`${err.message}: ${progress()}`)
    })
    const opened = Date.now() - openedAt
    const held = await memoryOf(agentPid)
    const connections = (await socketsOf(agentPid)) - idleSockets

    await stack.registerEntry({ spiffeId: LATER, selectors: [`unix:uid:${uid}`] })
    const createdAt = Date.now()
    await waitFor(saw('updated'), { timeoutMs: 10_000, failFast }).catch((err: Error) => {
      throw new Error(`${err.message}: ${progress()}`)
    })
    const propagated = Date.now() - createdAt
    const after = await memoryOf(agentPid)
    console.log(
      `1000 streams on ${connections} connections: all first responses in ${opened} ms; ` +
        `entry change on all 1000 in ${propagated} ms; ` +
        `agent VmRSS idle ${idle.rssMb} MB, holding 1000 streams ${held.rssMb} MB, ` +
        `after the update ${after.rssMb} MB (VmHWM ${after.peakMb} MB)`,
    )
    expect(connections).toBeGreaterThanOrEqual(10)
    expect(Math.max(held.rssMb, after.rssMb)).toBeLessThan(300)
    expect(events.filter((e) => e['event'] === 'error')).toEqual([])
  })
})
