import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import type { RunAs } from './processes.js'

const FLOOD_PATH = fileURLToPath(new URL('./conn-flood.mjs', import.meta.url))

/** What the flooding process saw once every connection attempt had settled. */
export interface FloodResult {
  /** Connections the kernel completed. */
  readonly opened: number
  /** Connections still open (held) when it reported. */
  readonly held: number
  /** Connections the other end closed after they were opened. */
  readonly closed: number
  /** Connection attempts that failed outright. */
  readonly failed: number
  /** Connection attempts made (closed ones replaced, refused ones retried). */
  readonly started: number
}

/** A running flood: its report, and how to end it (its connections close with it). */
export interface Flood {
  readonly result: FloodResult
  stop(): Promise<void>
}

/**
 * Starts test/helpers/conn-flood.mjs (as `runAs` when given) against a Unix socket or, with `tcp`,
 * a `host:port`, and waits (up to `timeoutMs`) for its report. The process keeps holding its
 * connections until {@link Flood.stop}.
 */
export async function startFlood(
  target: string,
  count: number,
  opts: { runAs?: RunAs; tcp?: boolean; sendHex?: string; timeoutMs?: number } = {},
): Promise<Flood> {
  const args = [FLOOD_PATH, target, String(count)]
  if (opts.tcp) args.push('--tcp')
  if (opts.sendHex) args.push('--send', opts.sendHex)
  const child = spawn(process.execPath, args, {
    cwd: '/',
    env: {},
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.runAs ?? {}),
  })
  let out = ''
  let err = ''
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString()
  })
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString()
  })
  const exited = once(child, 'exit')
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGKILL')
    await exited
  }
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000)
  while (!out.includes('\n')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop()
      throw new Error(`the flood did not report; stderr:\n${err}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  return { result: JSON.parse(out.trim()) as FloodResult, stop }
}
