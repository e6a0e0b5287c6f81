import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, readFileSync } from 'node:fs'
import { spawnPiped } from './child-process.js'
import { CLI_PATH, waitFor } from './processes.js'

/** The last line `tessera up` prints once everything is ready. */
export const UP_READY_SENTINEL = 'Ctrl-C stops'

/** One `tessera up` child and what it printed. */
export interface UpRun {
  readonly child: ChildProcess
  readonly startedMs: number
  readonly stdout: string
  readonly stderr: string
  readonly exitCode: Promise<number | null>
}

/** Every run {@link startUp} made, for {@link endUpRuns}. */
const runs: UpRun[] = []

/** Spawns `tessera up --data-dir <dir> [args]` with a bare environment, from `/`. */
export function startUp(dir: string, args: ReadonlyArray<string> = []): UpRun {
  const { child, output } = spawnPiped(process.execPath, [CLI_PATH, 'up', '--data-dir', dir, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  })
  const run: UpRun = {
    child,
    startedMs: performance.now(),
    get stdout() {
      return output.stdout()
    },
    get stderr() {
      return output.stderr()
    },
    exitCode: once(child, 'exit').then(([code]) => code as number | null),
  }
  runs.push(run)
  return run
}

/** Waits, against a deadline, for the ready sentinel; returns the milliseconds it took. */
export async function waitUntilUp(run: UpRun): Promise<number> {
  try {
    await waitFor(() => run.stdout.includes(UP_READY_SENTINEL), {
      timeoutMs: 30_000,
      failFast: () => run.child.exitCode !== null,
    })
  } catch (err) {
    throw new Error(`tessera up did not come up (${(err as Error).message}):\n${run.stdout}\n${run.stderr}`)
  }
  return performance.now() - run.startedMs
}

/** The `pid N` of the server and of the agent, as the summary prints them. */
export function childPids(run: UpRun): number[] {
  return [...run.stdout.matchAll(/\bpid (\d+), log /g)].map((m) => Number(m[1]))
}

/** True while `pid` runs (a zombie, dead but not yet reaped, does not count). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}

/** The live processes whose command line mentions `dir` (the children `up` started there). */
export function processesUsing(dir: string): number[] {
  const pids: number[] = []
  for (const name of readdirSync('/proc')) {
    const pid = Number(name)
    if (!Number.isInteger(pid) || pid === process.pid) continue
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
      if (args.some((a) => a.startsWith(dir)) && isAlive(pid)) pids.push(pid)
    } catch {
      // gone meanwhile
    }
  }
  return pids
}

/** Waits, against a deadline, until no process mentions `dir`; fails naming those left. */
export async function waitUntilNoneUsing(dir: string, timeoutMs = 20_000): Promise<void> {
  try {
    await waitFor(() => processesUsing(dir).length === 0, { timeoutMs })
  } catch {
    throw new Error(`processes still running on ${dir}: ${processesUsing(dir).join(', ')}`)
  }
}

/**
 * Waits, against a deadline, until none of `pids` runs. A process whose command line reads empty may
 * still be tearing itself down; only its end (or a zombie awaiting its reaper) counts.
 */
export async function waitUntilGone(pids: ReadonlyArray<number>, timeoutMs = 20_000): Promise<void> {
  try {
    await waitFor(() => !pids.some(isAlive), { timeoutMs })
  } catch {
    throw new Error(`still running: ${pids.filter(isAlive).join(', ')}`)
  }
}

/** Stops every run still going and kills whatever it left (for `afterEach`). */
export async function endUpRuns(): Promise<void> {
  for (const run of runs.splice(0)) {
    if (run.child.exitCode === null && run.child.signalCode === null) {
      run.child.kill('SIGTERM')
      await Promise.race([run.exitCode, new Promise((resolve) => setTimeout(resolve, 8000))])
    }
    run.child.kill('SIGKILL')
    for (const pid of childPids(run).filter(isAlive)) process.kill(pid, 'SIGKILL')
  }
}
