import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type AdminClients, callAdmin, connectAdmin } from '../cli/admin-client.js'
import type { CreateJoinTokenResponse__Output } from '../common/gen/tessera/admin/v1/CreateJoinTokenResponse.js'
import type { GetBundleResponse__Output } from '../common/gen/tessera/admin/v1/GetBundleResponse.js'
import type { Entry, Entry__Output } from '../common/gen/tessera/types/v1/Entry.js'
import { fetchFirstX509 } from './load/common.js'

/** The built CLI (`dist/cli/main.js`), found from `dist/bench/stack.js`. */
export const CLI_PATH = fileURLToPath(new URL('../cli/main.js', import.meta.url))
/** The alias the bench agent gets, as `tessera up` registers it. */
export const AGENT_ALIAS_PATH = '/tessera/agent/local'
const READY_TIMEOUT_MS = 20_000

/** A child process whose output is kept (for the error message if it fails). */
export interface Child {
  readonly process: ChildProcess
  readonly pid: number
  output(): string
  /** Settles once it has exited and its output is all read. */
  readonly closed: Promise<unknown>
  /** SIGTERM, SIGKILL after 5 s; resolves once it has exited. */
  stop(): Promise<void>
}

/**
 * `node --cpu-prof` options for a gateway or broker when `TESSERA_BENCH_CPU_PROF` names a directory
 * (docs/performance.md: how the profiles there were taken); none otherwise.
 */
function profiled(): string[] {
  const dir = process.env.TESSERA_BENCH_CPU_PROF
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : []
}

/** Spawns `node <script> <args>` with an empty environment and collects what it prints. */
export function spawnNode(
  script: string,
  args: ReadonlyArray<string>,
  nodeArgs: ReadonlyArray<string> = [],
): Child {
  const child = spawn(process.execPath, [...nodeArgs, script, ...args], { cwd: '/', env: {}, stdio: 'pipe' })
  let output = ''
  const collect = (d: Buffer) => {
    output += d.toString()
  }
  child.stdout.on('data', collect)
  child.stderr.on('data', collect)
  const exited = once(child, 'exit')
  const closed = once(child, 'close')
  return {
    process: child,
    pid: child.pid ?? -1,
    output: () => output,
    closed,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    },
  }
}

/** Resolves once `child` printed a line matching `pattern` (the match), or fails past the deadline. */
export async function waitForOutput(child: Child, pattern: RegExp, timeoutMs = READY_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const m = pattern.exec(child.output())
    if (m) return m
    if (child.process.exitCode !== null) throw new Error(`the child exited:\n${child.output()}`)
    if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${child.output()}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** A `tessera gateway` or `tessera broker` child and the port it logged it listens on. */
export interface HttpFront {
  readonly child: Child
  readonly port: number
}

/**
 * Runs `tessera <app> <args>` (listening on port 0) until it logs `"<app> ready"` with its listen
 * address; a child that fails to get there is stopped.
 */
export async function startHttpFront(app: 'gateway' | 'broker', args: readonly string[]): Promise<HttpFront> {
  const child = spawnNode(CLI_PATH, [app, ...args], profiled())
  try {
    const ready = await waitForOutput(child, new RegExp(`"listen":"[^"]*:(\\d+)".*"${app} ready"`))
    return { child, port: Number(ready[1]) }
  } catch (err) {
    await child.stop()
    throw err
  }
}

/** Current and peak resident set size of a process, in MiB (`VmRSS`, `VmHWM`). */
export function rssOf(pid: number): { rssMib: number; peakMib: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN)
  return { rssMib: kib('VmRSS') / 1024, peakMib: kib('VmHWM') / 1024 }
}

/** A real `tessera server run` and `tessera agent run` in a temp dir, wired as `tessera up` wires them. */
export interface BenchStack {
  readonly dir: string
  readonly trustDomain: string
  readonly socketPath: string
  readonly adminSocket: string
  /** The server's agent API, `127.0.0.1:port`. */
  readonly serverAddress: string
  /** The server's bundle (PEM), as the agent was bootstrapped with. */
  readonly bundlePath: string
  readonly agentAlias: string
  readonly server: Child
  readonly agent: Child
  readonly admin: AdminClients
  /** Registers `spiffe://<td><path>` for this uid under `parentId` (default: the agent alias). */
  createEntry(path: string, parentId?: string): Promise<string>
  stop(): Promise<void>
}

/** The entry the bench workloads (this uid) match. */
export function workloadEntry(trustDomain: string, path: string, parentId: string): Entry {
  const uid = process.getuid?.() ?? 0
  return {
    spiffe_id: `spiffe://${trustDomain}${path}`,
    parent_id: parentId,
    selectors: [{ type: 'unix', value: `uid:${uid}` }],
  }
}

/**
 * Starts the server (`--bind-port 0`), makes a join token with the agent alias, registers
 * `/bench/workload` for this uid, writes the bundle, and starts the agent with the token: the
 * same steps as `tessera up`, in the same order. Both log at `info` (nothing per call).
 */
export async function startBenchStack(
  trustDomain = 'bench.local',
  extraAgentArgs: ReadonlyArray<string> = [],
  agentNodeArgs: ReadonlyArray<string> = [],
): Promise<BenchStack> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-bench-wl-'))
  const common = ['--trust-domain', trustDomain, '--log-level', 'info']
  const serverArgs = ['server', 'run', '--data-dir', join(dir, 'server'), '--bind-port', '0', ...common]
  const server = spawnNode(CLI_PATH, serverArgs)
  let agent: Child | undefined
  const admin = connectAdmin(join(dir, 'server', 'admin.sock'))
  const cleanup = async () => {
    admin.close()
    await agent?.stop()
    await server.stop()
    await rm(dir, { recursive: true, force: true })
  }
  try {
    const ready = await waitForOutput(server, /"agentApi":"[^"]*:(\d+)".*"server ready"/)
    const agentAlias = `spiffe://${trustDomain}${AGENT_ALIAS_PATH}`
    const [bundle, token] = await Promise.all([
      callAdmin<GetBundleResponse__Output>(admin, (o, cb) => admin.bundles.GetBundle({}, o, cb)),
      callAdmin<CreateJoinTokenResponse__Output>(admin, (o, cb) =>
        admin.joinTokens.CreateJoinToken({ alias_spiffe_id: agentAlias }, o, cb),
      ),
      callAdmin(admin, (o, cb) =>
        admin.entries.CreateEntry(
          { entry: workloadEntry(trustDomain, '/bench/workload', agentAlias) },
          o,
          cb,
        ),
      ),
    ])
    await writeFile(join(dir, 'bundle.pem'), bundle.pem)
    const agentArgs = ['agent', 'run', '--data-dir', join(dir, 'agent'), ...common, ...extraAgentArgs]
    agentArgs.push('--server-address', `127.0.0.1:${ready[1]}`, '--trust-bundle', join(dir, 'bundle.pem'))
    agent = spawnNode(CLI_PATH, [...agentArgs, '--join-token', token.token], agentNodeArgs)
    await waitForOutput(agent, /"agent ready"/)
    const running = agent
    return {
      dir,
      trustDomain,
      socketPath: join(dir, 'agent', 'public', 'api.sock'),
      adminSocket: join(dir, 'server', 'admin.sock'),
      serverAddress: `127.0.0.1:${ready[1]}`,
      bundlePath: join(dir, 'bundle.pem'),
      agentAlias,
      server,
      agent: running,
      admin,
      async createEntry(path, parentId = agentAlias) {
        const entry = workloadEntry(trustDomain, path, parentId)
        return (await callAdmin<Entry__Output>(admin, (o, cb) => admin.entries.CreateEntry({ entry }, o, cb)))
          .id
      },
      stop: cleanup,
    }
  } catch (err) {
    await cleanup()
    throw err
  }
}

/** Time from spawning `tessera up` to the first X509-SVID served, in ms. */
export interface UpFigures {
  /** Fresh data dir: the entry is created as soon as `up` prints its instructions, as a user would. */
  readonly freshMs: number
  /** Second `up` on the same dir (state and entry reused), as a second `npm start`. */
  readonly reusedMs: number
}

/** Runs `tessera up` in a fresh temp dir, then again on the same dir, timing each to a first SVID. */
export async function measureUp(trustDomain = 'bench-up.local'): Promise<UpFigures> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-bench-up-'))
  const socket = join(dir, 'agent', 'public', 'api.sock')
  const run = async (beforeFetch: () => Promise<unknown>) => {
    const t0 = performance.now()
    const up = spawnNode(CLI_PATH, ['up', '--data-dir', dir, '--trust-domain', trustDomain, '--port', '0'])
    try {
      await waitForOutput(up, /export SPIFFE_ENDPOINT_SOCKET=/)
      await beforeFetch()
      await fetchFirstX509(socket)
      return performance.now() - t0
    } finally {
      await up.stop()
    }
  }
  try {
    const freshMs = await run(async () => {
      const admin = connectAdmin(join(dir, 'server', 'admin.sock'))
      const entry = workloadEntry(trustDomain, '/bench/up', `spiffe://${trustDomain}${AGENT_ALIAS_PATH}`)
      await callAdmin(admin, (o, cb) => admin.entries.CreateEntry({ entry }, o, cb)).finally(() =>
        admin.close(),
      )
    })
    const reusedMs = await run(async () => {})
    return { freshMs, reusedMs }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
