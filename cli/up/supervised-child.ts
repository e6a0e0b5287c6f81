import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { LogTail } from './log-tail.js'
import { removePidFile, writePidFile } from './pid-files.js'

/** This CLI's own entry point, which `up` runs its children with. */
export const CLI_MAIN_PATH = fileURLToPath(new URL('../main.js', import.meta.url))
/** Preloaded into each child: it stops when `up` is gone (see lifeline.ts). */
const LIFELINE_URL = new URL('./lifeline.js', import.meta.url).href
/** How often the children's log files are read for new lines. */
const TAIL_INTERVAL_MS = 25

/** How many of a child's output lines are kept for an error report. */
const KEPT_LINES = 200
/** How long a child may take to stop after SIGTERM before it gets SIGKILL. */
const STOP_GRACE_MS = 5000

/** How a child ended. */
export interface ChildExit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

/** What to run: `tessera <args>` with `env`, its output appended to `logPath`, its pid in `pidPath`. */
export interface ChildSpec {
  readonly name: string
  readonly args: ReadonlyArray<string>
  readonly env: NodeJS.ProcessEnv
  readonly logPath: string
  readonly pidPath: string
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
 * A `tessera server run` or `agent run` child of `up`. It writes its log file itself, so it does not
 * depend on `up`'s stdout; `up` follows the file and keeps the last lines for error reports. Its
 * stdin is the lifeline (lifeline.ts): when `up` exits, however, the child stops. It runs in its
 * own process group, so a Ctrl-C at the terminal reaches only `up`, which stops the children in
 * order. Its pid is in `pidPath` while it runs.
 */
export class SupervisedChild {
  readonly name: string
  readonly logPath: string
  /** Resolves once the child has exited and its log is read to the end (never rejects). */
  readonly exited: Promise<ChildExit>
  readonly #child: ChildProcess
  readonly #tail: LogTail
  readonly #lines: string[] = []
  readonly #watchers = new Set<(record: Record<string, unknown>) => void>()
  #exit: ChildExit | undefined

  private constructor(spec: ChildSpec) {
    this.name = spec.name
    this.logPath = spec.logPath
    const logFd = openSync(spec.logPath, 'a', 0o600)
    this.#tail = LogTail.openAtEnd(spec.logPath)
    try {
      this.#child = spawn(process.execPath, ['--import', LIFELINE_URL, CLI_MAIN_PATH, ...spec.args], {
        env: spec.env,
        detached: true,
        stdio: ['pipe', logFd, logFd],
      })
    } finally {
      closeSync(logFd)
    }
    // Never written, never ended: only `up`'s exit closes it.
    this.#child.stdin?.on('error', () => undefined)
    if (this.#child.pid !== undefined) writePidFile(spec.pidPath, this.#child.pid)
    const timer = setInterval(() => this.#read(), TAIL_INTERVAL_MS)
    this.exited = new Promise((resolve) => {
      const finish = (exit: ChildExit) => {
        if (this.#exit !== undefined) return
        clearInterval(timer)
        for (const line of this.#tail.close()) this.#keep(line)
        removePidFile(spec.pidPath)
        this.#exit = exit
        resolve(exit)
      }
      this.#child.once('error', (err) => {
        this.#keep(`cannot start: ${err.message}`)
        finish({ code: null, signal: null })
      })
      this.#child.once('exit', (code, signal) => finish({ code, signal }))
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

  /** Calls `listener` with each JSON log line the child writes from now on. */
  onRecord(listener: (record: Record<string, unknown>) => void): void {
    this.#watchers.add(listener)
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

  #read(): void {
    for (const line of this.#tail.readLines()) this.#keep(line)
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
