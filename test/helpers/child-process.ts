import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process'
import { once } from 'node:events'

/** What a child has printed so far. */
export interface ChildOutput {
  stdout(): string
  stderr(): string
  /** Both, interleaved in the order they arrived. */
  all(): string
}

/** A spawned child whose stdout and stderr are being collected. */
export interface PipedChild {
  readonly child: ChildProcess
  readonly output: ChildOutput
}

/** How a child ended: its exit code (null when a signal ended it) and all it printed. */
export interface ChildResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Collects everything `child` prints on its piped stdout and stderr. */
export function collectOutput(child: ChildProcess): ChildOutput {
  let stdout = ''
  let stderr = ''
  let all = ''
  child.stdout?.on('data', (d: Buffer) => {
    const text = d.toString()
    stdout += text
    all += text
  })
  child.stderr?.on('data', (d: Buffer) => {
    const text = d.toString()
    stderr += text
    all += text
  })
  return { stdout: () => stdout, stderr: () => stderr, all: () => all }
}

/**
 * Spawns `command` with stdin closed and stdout/stderr collected. By default the child starts in `/`
 * with an empty environment, so nothing of the test's leaks in and a child running as another user
 * needs no access to the test's cwd; `options` may set both.
 */
export function spawnPiped(
  command: string,
  args: ReadonlyArray<string>,
  options: Omit<SpawnOptions, 'stdio'> = {},
): PipedChild {
  const child = spawn(command, [...args], {
    cwd: '/',
    env: {},
    ...options,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  return { child, output: collectOutput(child) }
}

/**
 * Waits until a child from {@link spawnPiped} has exited and closed its output (call it right after
 * spawning). Past `timeoutMs` it is killed and the promise rejects with what it printed.
 */
export function untilEnd(piped: PipedChild, timeoutMs = 60_000, what = 'the child'): Promise<ChildResult> {
  const { child, output } = piped
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${what} took over ${timeoutMs} ms\n${output.stdout()}\n${output.stderr()}`))
    }, timeoutMs)
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout: output.stdout(), stderr: output.stderr() })
    })
  })
}

/** Runs `command` to its end (see {@link spawnPiped} for the defaults) and returns how it ended. */
export function runToEnd(
  command: string,
  args: ReadonlyArray<string>,
  options: Omit<SpawnOptions, 'stdio'> & { readonly timeoutMs?: number } = {},
): Promise<ChildResult> {
  const { timeoutMs, ...spawnOptions } = options
  return untilEnd(spawnPiped(command, args, spawnOptions), timeoutMs, `${command} ${args.join(' ')}`)
}

/**
 * Waits for the first whole line a child from {@link spawnPiped} prints on stdout and returns it
 * (without the newline). Rejects, with what it printed on stderr, when it exits first or when no line
 * came within `timeoutMs` (it is then left running: stop it with {@link stopChild}).
 */
export async function firstLine(piped: PipedChild, timeoutMs = 60_000): Promise<string> {
  const { child, output } = piped
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const out = output.stdout()
    const end = out.indexOf('\n')
    if (end >= 0) return out.slice(0, end)
    if (hasExited(child) || Date.now() > deadline) {
      const why = hasExited(child)
        ? `exited (${child.exitCode ?? child.signalCode})`
        : `not within ${timeoutMs} ms`
      throw new Error(`no line from the child: ${why}; its stderr:\n${output.stderr()}`)
    }
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** True once the child has exited (by itself or by a signal). */
export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null
}

/** Sends `signal` (SIGTERM by default), then SIGKILL after `graceMs`; resolves once the child has exited. */
export async function stopChild(
  child: ChildProcess,
  signal: NodeJS.Signals = 'SIGTERM',
  graceMs = 5000,
): Promise<void> {
  if (hasExited(child)) return
  const exited = once(child, 'exit')
  child.kill(signal)
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
}
