import { fileURLToPath } from 'node:url'
import { type Child, spawnNode, waitForOutput } from '../stack.js'

/** The compiled load child `bench/load/<name>.ts`. */
export function loadScript(name: string): string {
  return fileURLToPath(new URL(`./${name}.js`, import.meta.url))
}

function lastJson<T>(child: Child, name: string): T {
  const lines = child.output().trim().split('\n')
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i] ?? ''
    if (!line.startsWith('{')) continue
    const figures = JSON.parse(line) as T & { error?: string }
    if (figures.error !== undefined) throw new Error(`load child ${name} failed: ${figures.error}`)
    return figures
  }
  throw new Error(`load child ${name} printed no figures:\n${child.output()}`)
}

/** Runs load child `name` with `task` to its end and returns the figures it printed. */
export async function runLoad<T>(name: string, task: object): Promise<T> {
  const child = spawnNode(loadScript(name), [JSON.stringify(task)])
  await child.closed
  return lastJson<T>(child, name)
}

/** A load child that keeps running (holding streams, serving) until {@link HeldLoad.finish}. */
export interface HeldLoad<T> {
  readonly child: Child
  /** What it printed once ready. */
  readonly ready: T
  /** Closes its stdin (its signal to stop) and returns its last figures. */
  finish<F = T>(): Promise<F>
}

/** Starts load child `name` and waits for its first JSON line, which says it is ready. */
export async function holdLoad<T>(name: string, task: object, timeoutMs = 30_000): Promise<HeldLoad<T>> {
  const child = spawnNode(loadScript(name), [JSON.stringify(task)])
  try {
    await waitForOutput(child, /^\{.*\}$/m, timeoutMs)
  } catch (err) {
    await child.stop()
    throw err
  }
  const ready = lastJson<T>(child, name)
  return {
    child,
    ready,
    async finish<F>() {
      child.process.stdin?.end()
      const timer = setTimeout(() => void child.stop(), 10_000)
      await child.closed
      clearTimeout(timer)
      return lastJson<F>(child, name)
    },
  }
}
