import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, openSync, writeSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** This CLI's own entry point, which `up` runs its children with. */
export const CLI_MAIN_PATH = fileURLToPath(new URL('../main.js', import.meta.url))

/** How many of a child's output lines are kept for an error report. */
const KEPT_LINES = 200
/** How long a child may take to stop after SIGTERM before it gets SIGKILL. */
const STOP_GRACE_MS = 5000

/** How a child ended. */
export interface ChildExit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

/** What to run: `tessera <args>` with `env`, its output appended to `logPath`. */
export interface ChildSpec {
  readonly name: string
  readonly args: ReadonlyArray<string>
  readonly env: NodeJS.ProcessEnv
  readonly logPath: string
}

/** One JSON log line, or undefined for any other output (an `error …` line). */
function parseRecord(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined
  try {
    return JSON.parse(line) as Record<string, unknown>
  } catch {
    return undefined
  }
}

/**
 * A `tessera server run` or `agent run` child of `up`: its output goes to its log file and is kept
 * (the last lines) for error reports. It runs in its own process group, so a Ctrl-C at the terminal
 * reaches only `up`, which stops the children in order.
 */
export class SupervisedChild {
  readonly name: string
  readonly logPath: string
  /** Resolves once the child has exited and its log is closed (never rejects). */
  readonly exited: Promise<ChildExit>
  readonly #child: ChildProcess
  /** The log file, written synchronously: a line `up` has acted on is on disk already. */
  readonly #logFd: number
  readonly #lines: string[] = []
  readonly #watchers = new Set<(record: Record<string, unknown>) => void>()
  #partial = ''
  #exit: ChildExit | undefined

  private constructor(spec: ChildSpec) {
    this.name = spec.name
    this.logPath = spec.logPath
    this.#logFd = openSync(spec.logPath, 'a', 0o600)
    this.#child = spawn(process.execPath, [CLI_MAIN_PATH, ...spec.args], {
      env: spec.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.#child.stdout?.on('data', (d: Buffer) => this.#take(d))
    this.#child.stderr?.on('data', (d: Buffer) => this.#take(d))
    this.exited = new Promise((resolve) => {
      const finish = (exit: ChildExit) => {
        if (this.#exit !== undefined) return
        if (this.#partial !== '') this.#keep(this.#partial)
        this.#exit = exit
        closeSync(this.#logFd)
        resolve(exit)
      }
      this.#child.once('error', (err) => {
        this.#take(Buffer.from(`cannot start: ${err.message}\n`))
        finish({ code: null, signal: null })
      })
      this.#child.once('close', (code, signal) => finish({ code, signal }))
    })
  }

  /** Spawns `tessera <spec.args>`. */
  static start(spec: ChildSpec): SupervisedChild {
    return new SupervisedChild(spec)
  }

  get pid(): number | undefined {
    return this.#child.pid
  }

  get hasExited(): boolean {
    return this.#exit !== undefined
  }

  /** The last `count` lines it printed, this run only. */
  lastLines(count = 20): string[] {
    return this.#lines.slice(-count)
  }

  /**
   * Waits for the first JSON log line `isReady` accepts and returns it.
   * Rejects when the child exits first or `timeoutMs` passes.
   */
  waitForRecord(isReady: (record: Record<string, unknown>) => boolean, timeoutMs: number) {
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`not ready within ${timeoutMs / 1000} s`)), timeoutMs)
      const watcher = (record: Record<string, unknown>) => {
        if (isReady(record)) finish(undefined, record)
      }
      const finish = (err?: Error, record?: Record<string, unknown>) => {
        clearTimeout(timer)
        this.#watchers.delete(watcher)
        if (record) resolve(record)
        else reject(err)
      }
      this.#watchers.add(watcher)
      void this.exited.then((exit) => finish(new Error(`exited (${describeExit(exit)})`)))
    })
  }

  /** SIGTERM, then SIGKILL after a grace period; resolves once it has exited and its log is flushed. */
  async stop(): Promise<ChildExit> {
    this.#signal('SIGTERM')
    const timer = setTimeout(() => this.#signal('SIGKILL'), STOP_GRACE_MS)
    const exit = await this.exited
    clearTimeout(timer)
    return exit
  }

  /** SIGKILL now (a second Ctrl-C). */
  kill(): void {
    this.#signal('SIGKILL')
  }

  #signal(signal: NodeJS.Signals): void {
    if (this.#exit === undefined) this.#child.kill(signal)
  }

  #take(data: Buffer): void {
    try {
      if (this.#exit === undefined) writeSync(this.#logFd, data)
    } catch {
      // A full disk must not stop the child: its last lines are still kept in memory.
    }
    const lines = (this.#partial + data.toString()).split('\n')
    this.#partial = lines.pop() ?? ''
    for (const line of lines) this.#keep(line)
  }

  #keep(line: string): void {
    this.#lines.push(line)
    if (this.#lines.length > KEPT_LINES) this.#lines.shift()
    const record = parseRecord(line)
    if (record) for (const watcher of this.#watchers) watcher(record)
  }
}

/** `exit code 1`, `signal SIGKILL`. */
export function describeExit(exit: ChildExit): string {
  if (exit.signal !== null) return `signal ${exit.signal}`
  return exit.code === null ? 'could not start' : `exit code ${exit.code}`
}
