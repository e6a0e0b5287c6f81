import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { makeTempDir, removeDir } from './processes.js'

/** The repository root (this file is test/helpers/server-process.ts). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
/** The built CLI; integration tests run after `npm run build`. */
export const CLI_PATH = join(REPO_ROOT, 'dist', 'cli', 'main.js')
/** How long a server may take to print `server ready`. */
export const READY_DEADLINE_MS = 60_000

/** A `tessera server run` child in its own temp directory. */
export interface ServerProcess {
  readonly dir: string
  readonly dataDir: string
  readonly adminSocket: string
  readonly auditLogPath: string
  readonly trustDomain: string
  /** `127.0.0.1:<port>` of the agent API. */
  readonly agentAddress: string
  readonly child: ChildProcess
  /** Everything the child wrote so far (stdout and stderr). */
  output(): string
  /** The audit log's records so far. */
  auditRecords(): Promise<Array<Record<string, unknown>>>
  /** True while the child runs. */
  isRunning(): boolean
  /** Stops the child (SIGTERM, then SIGKILL) and removes the directory. Safe to call twice. */
  cleanup(): Promise<void>
}

/** Options of {@link startServerProcess}. */
export interface ServerProcessOptions {
  readonly trustDomain?: string
  /** More `server run` flags. */
  readonly args?: ReadonlyArray<string>
}

/**
 * Starts the built server with its data dir, admin socket and audit log in a fresh temp directory and
 * the agent API on a free port; resolves once it logs `server ready`.
 * @throws with the child's output when it exits or is not ready within {@link READY_DEADLINE_MS}
 */
export async function startServerProcess(options: ServerProcessOptions = {}): Promise<ServerProcess> {
  if (!existsSync(CLI_PATH)) throw new Error(`${CLI_PATH} is missing: run npm run build first`)
  const dir = await makeTempDir('tessera-srv-')
  const dataDir = join(dir, 'server')
  const trustDomain = options.trustDomain ?? 'example.org'
  const args = [
    CLI_PATH,
    'server',
    'run',
    '--data-dir',
    dataDir,
    '--bind-port',
    '0',
    '--trust-domain',
    trustDomain,
  ]
  const child = spawn(process.execPath, [...args, ...(options.args ?? [])], {
    cwd: dir,
    env: { PATH: process.env['PATH'] ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout?.on('data', (b: Buffer) => {
    output += b.toString('utf8')
  })
  child.stderr?.on('data', (b: Buffer) => {
    output += b.toString('utf8')
  })
  const cleanup = async () => {
    await stopChild(child)
    await removeDir(dir)
  }
  try {
    const port = await waitForReady(child, () => output)
    const auditLogPath = join(dataDir, 'audit.log')
    return {
      dir,
      dataDir,
      adminSocket: join(dataDir, 'admin.sock'),
      auditLogPath,
      trustDomain,
      agentAddress: `127.0.0.1:${port}`,
      child,
      output: () => output,
      auditRecords: () => readJsonLines(auditLogPath),
      isRunning: () => child.exitCode === null && child.signalCode === null,
      cleanup,
    }
  } catch (err) {
    await cleanup()
    throw new Error(`server did not start: ${(err as Error).message}\n--- server output ---\n${output}`)
  }
}

/** Polls the child's output for the `server ready` line until the deadline; returns the agent API port. */
async function waitForReady(child: ChildProcess, output: () => string): Promise<number> {
  const deadline = Date.now() + READY_DEADLINE_MS
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`exited with ${child.exitCode ?? child.signalCode}`)
    const port = readyPort(output())
    if (port !== undefined) return port
    await new Promise((r) => setTimeout(r, 25))
  }
  throw new Error(`not ready within ${READY_DEADLINE_MS} ms`)
}

function readyPort(output: string): number | undefined {
  for (const line of output.split('\n')) {
    if (!line.includes('server ready')) continue
    try {
      const record = JSON.parse(line) as { agentApi?: string }
      const port = Number(record.agentApi?.split(':').pop())
      if (Number.isInteger(port) && port > 0) return port
    } catch {
      // not JSON (text log format): keep polling
    }
  }
  return undefined
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
}

/** The JSON lines of a file ([] when it does not exist yet). */
export async function readJsonLines(path: string): Promise<Array<Record<string, unknown>>> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch {
    return []
  }
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}
