import { fileURLToPath } from 'node:url'
import { firstLine, spawnPiped, stopChild } from './child-process.js'
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
  const piped = spawnPiped(process.execPath, args, opts.runAs ?? {})
  const stop = () => stopChild(piped.child, 'SIGKILL')
  const report = await firstLine(piped, opts.timeoutMs ?? 120_000).catch(async (err: Error) => {
    await stop()
    throw new Error(`the flood did not report: ${err.message}`)
  })
  return { result: JSON.parse(report) as FloodResult, stop }
}
