import type { ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type ChildResult, hasExited, spawnPiped, stopChild, untilEnd } from './child-process.js'

/** The built CLI that integration tests run (`npm run build` makes it). */
export const CLI_PATH = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url))

/** Who a child runs as (spawn's `uid`/`gid`; the test must be root to change them). */
export interface RunAs {
  readonly uid: number
  readonly gid: number
}

/** True when this process may run children as other users. */
export const isRoot = process.getuid?.() === 0

const children = new Set<ChildProcess>()

/** Fails early, with the fix, when `dist/` has not been built. */
export function requireBuild(): void {
  if (!existsSync(CLI_PATH)) throw new Error(`${CLI_PATH} is missing: run \`npm run build\` first`)
}

/** A fresh temp directory `<tmpdir>/<prefix>XXXXXX`. */
export function makeTempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix))
}

/** Removes a directory tree; never fails. */
export async function removeDir(dir: string | undefined): Promise<void> {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
}

/** What a finished CLI run printed. */
export type CliResult = ChildResult

/** Options of {@link runCli}. */
export interface CliOptions {
  /** Added as `--socket <path>`. */
  readonly socket?: string
  readonly runAs?: RunAs
  /** The child's whole environment (nothing is inherited, so no TESSERA_* leaks in). */
  readonly env?: Readonly<Record<string, string>>
  /** Default `/`, so a child running as another user needs no access to the test's cwd. */
  readonly cwd?: string
  readonly timeoutMs?: number
  /** Another build of the CLI than the repository's `dist/` (default {@link CLI_PATH}). */
  readonly cliPath?: string
}

/** Runs `tessera <args>` from `dist/` and collects its exit code and output. */
export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  const argv = [
    options.cliPath ?? CLI_PATH,
    ...args,
    ...(options.socket === undefined ? [] : ['--socket', options.socket]),
  ]
  const piped = spawnPiped(process.execPath, argv, {
    cwd: options.cwd ?? '/',
    env: { ...options.env },
    ...(options.runAs ?? {}),
  })
  children.add(piped.child)
  return untilEnd(piped, options.timeoutMs ?? 60_000, `tessera ${args.join(' ')}`).finally(() =>
    children.delete(piped.child),
  )
}

/** Parses the JSON a successful `--output json` run printed; fails with its output otherwise. */
export function jsonOf<T = Record<string, unknown>>(result: CliResult): T {
  if (result.code !== 0) throw new Error(`the command failed (${result.code}): ${result.stderr}`)
  return JSON.parse(result.stdout) as T
}

/** A `tessera server run` child. */
export interface ServerProcess {
  readonly child: ChildProcess
  readonly pid: number
  readonly dataDir: string
  /** The admin socket (`<data-dir>/admin.sock` unless `--admin-socket` was given). */
  readonly socket: string
  /** Everything it printed so far (stdout and stderr interleaved). */
  output(): string
  /** SIGTERM, then SIGKILL after a grace period; resolves once it has exited. */
  stop(): Promise<void>
  /** `kill -9`; resolves once it has exited. */
  kill9(): Promise<void>
}

/** Options of {@link startServerProcess}. */
export interface ServerOptions {
  readonly dataDir: string
  /** Extra flags for `server run`. */
  readonly args?: readonly string[]
  readonly socket?: string
  readonly readyTimeoutMs?: number
}

/**
 * Spawns `tessera server run --data-dir D --bind-port 0 --log-level debug` and waits, against a
 * deadline, for its `server ready` log line. On failure the child is killed and its output is in
 * the error.
 */
export async function startServerProcess(options: ServerOptions): Promise<ServerProcess> {
  const socket = options.socket ?? join(options.dataDir, 'admin.sock')
  const args = ['server', 'run', '--data-dir', options.dataDir, '--bind-port', '0', '--log-level', 'debug']
  if (options.socket !== undefined) args.push('--admin-socket', options.socket)
  const { child, output } = spawnPiped(process.execPath, [CLI_PATH, ...args, ...(options.args ?? [])])
  children.add(child)
  let spawnError = ''
  child.on('error', (err) => {
    spawnError = `spawn failed: ${err.message}\n`
  })
  const printed = () => output.all() + spawnError
  child.once('exit', () => children.delete(child))
  const server: ServerProcess = {
    child,
    pid: child.pid ?? -1,
    dataDir: options.dataDir,
    socket,
    output: printed,
    stop: () => stopChild(child, 'SIGTERM'),
    kill9: () => stopChild(child, 'SIGKILL'),
  }
  try {
    await waitFor(() => output.all().includes('"msg":"server ready"'), {
      timeoutMs: options.readyTimeoutMs ?? 60_000,
      failFast: () => hasExited(child),
    })
  } catch (err) {
    await server.kill9()
    throw new Error(`the server did not get ready (${(err as Error).message}); its output:\n${printed()}`)
  }
  return server
}

/** Polls `condition` every 20 ms until it holds; throws past the deadline or once `failFast` holds. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  options: { timeoutMs: number; failFast?: () => boolean },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs
  while (!(await condition())) {
    if (options.failFast?.()) throw new Error('the process exited')
    if (Date.now() > deadline) throw new Error(`not done within ${options.timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** Prints the output of the given servers (call it when a test failed). */
export function dumpOutput(servers: ReadonlyArray<ServerProcess | undefined>): void {
  for (const s of servers) {
    if (s !== undefined)
      console.error(`--- output of the server in ${s.dataDir} (pid ${s.pid}) ---\n${s.output()}`)
  }
}

/** Kills every child these helpers started that is still running (for `afterAll`). */
export async function killAllChildren(): Promise<void> {
  await Promise.all(
    [...children].map(async (child) => {
      await stopChild(child, 'SIGKILL').catch(() => undefined)
      children.delete(child)
    }),
  )
}
