import { mkdir, mkdtemp, readdir, readFile, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { formatTable } from './harness.js'
import { holdLoad, runLoad } from './load/children.js'
import type { RateKind, RateReport, RateTask } from './load/rate.js'
import { benchRates } from './load/rate-rows.js'
import { startBenchStack } from './stack.js'

/** A V8 `.cpuprofile` as `node --cpu-prof` writes it (the fields read here). */
interface CpuProfile {
  readonly nodes: ReadonlyArray<{
    readonly id: number
    readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  }>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

/** Self time by function and by module (file, or package under node_modules), largest first. */
export function selfTimes(profile: CpuProfile): {
  byFunction: Map<string, number>
  byModule: Map<string, number>
} {
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]))
  const byFunction = new Map<string, number>()
  const byModule = new Map<string, number>()
  const add = (m: Map<string, number>, k: string, us: number) => m.set(k, (m.get(k) ?? 0) + us)
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0
    const f = frames.get(id)
    if (f === undefined) return
    const url = f.url.replace(/^file:\/\//, '')
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1]
    const name = f.functionName || '(anonymous)'
    const builtin = name.startsWith('(') ? name : `(native ${name})`
    const module = pkg ?? (url === '' ? builtin : url.replace(/^.*\/dist\//, ''))
    add(byModule, module, us)
    add(byFunction, `${f.functionName || '(anonymous)'} ${module}:${f.lineNumber + 1}`, us)
  })
  return { byFunction, byModule }
}

const top = (m: Map<string, number>, total: number, n: number) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, us]) => `${((100 * us) / total).toFixed(1).padStart(5)} %  ${k}`)
    .join('\n')

/**
 * Profiles the real agent (`node --cpu-prof`) while one client calls it back to back:
 * `node dist/bench/profile-workload.js jwt|x509 [seconds] [out dir, default a new temp dir]`. Prints the calls made and the
 * agent's self time by module and by function over the whole run (start-up included, a small part).
 * `… profile-workload.js <file>.cpuprofile` prints a written profile; `… rates` only the rate rows.
 */
async function main(): Promise<void> {
  if (process.argv[2]?.endsWith('.cpuprofile')) return print(process.argv[2], 0)
  if (process.argv[2] === 'rates') return rates()
  const kind = (process.argv[2] ?? 'jwt') as RateKind
  const seconds = Number(process.argv[3] ?? 8)
  const out = resolve(process.argv[4] ?? (await mkdtemp(join(tmpdir(), `tessera-profile-${kind}-`))))
  await mkdir(out, { recursive: true })
  const stack = await startBenchStack('bench.local', [], ['--cpu-prof', '--cpu-prof-dir', out])
  let calls = 0
  try {
    const task: RateTask = {
      targets: [{ kind, socket: stack.socketPath, pid: stack.agent.pid }],
      concurrency: 1,
      rounds: 1,
      warmupMs: 500,
      measureMs: seconds * 1000,
    }
    const report = await runLoad<RateReport>('rate', task)
    const f = report[kind]
    calls = Math.round((f?.callsPerSecond ?? 0) * seconds)
    console.log(
      `${kind}: ${f?.callsPerSecond.toFixed(0)} calls/s, agent CPU ${f?.serverCpuUsPerCall?.toFixed(0)} µs/call`,
    )
  } finally {
    await stack.stop()
  }
  // One profile per thread (the hashing workers have their own): the main thread's is the largest.
  const files = (await readdir(out)).filter((f) => f.endsWith('.cpuprofile'))
  const sized = await Promise.all(files.map(async (f) => [f, (await stat(join(out, f))).size] as const))
  const file = sized.sort((a, b) => b[1] - a[1])[0]?.[0]
  if (file === undefined) throw new Error(`no profile in ${out}`)
  await print(join(out, file), calls)
}

/** Only the Workload API group's rate rows (agent vs the bare echo, same run), without profiling. */
async function rates(): Promise<void> {
  const stack = await startBenchStack()
  try {
    const socket = join(stack.dir, 'echo.sock')
    const echo = await holdLoad<{ pid: number }>('echo-server', { socket })
    try {
      const agent = { socket: stack.socketPath, pid: stack.agent.pid }
      console.log(formatTable(await benchRates({ echo: { socket, pid: echo.ready.pid }, agent })))
    } finally {
      await echo.finish()
    }
  } finally {
    await stack.stop()
  }
}

async function print(path: string, calls: number): Promise<void> {
  const profile = JSON.parse(await readFile(path, 'utf8')) as CpuProfile
  const total = profile.timeDeltas.reduce((a, b) => a + b, 0)
  const { byFunction, byModule } = selfTimes(profile)
  const idle = byModule.get('(idle)') ?? 0
  console.log(`profile ${path}: ${(total / 1e6).toFixed(1)} s, busy ${((total - idle) / 1e6).toFixed(2)} s`)
  if (calls > 0)
    console.log(
      `busy per measured call (upper bound, start-up included): ${((total - idle) / calls).toFixed(0)} µs`,
    )
  console.log(`\nself time by module:\n${top(byModule, total - idle, 25)}`)
  console.log(`\nself time by function:\n${top(byFunction, total - idle, 40)}`)
}

await main()
