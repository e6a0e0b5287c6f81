import type { ChildProcess } from 'node:child_process'
import { hasExited, spawnPiped, stopChild } from './child-process.js'
import { CLI_PATH, waitFor } from './processes.js'

/** A `tessera broker` child. */
export interface BrokerProcess {
  readonly child: ChildProcess
  readonly port: number
  output(): string
  stop(): Promise<void>
}

/** Spawns `tessera broker <args>` with `env` only and waits for its `broker ready` line. */
export async function startBrokerProcess(
  args: ReadonlyArray<string>,
  env: Readonly<Record<string, string>>,
): Promise<BrokerProcess> {
  const { child, output } = spawnPiped(process.execPath, [CLI_PATH, 'broker', ...args], { env: { ...env } })
  const stop = () => stopChild(child)
  try {
    await waitFor(() => output.all().includes('"msg":"broker ready"'), {
      timeoutMs: 60_000,
      failFast: () => hasExited(child),
    })
  } catch (err) {
    await stop()
    throw new Error(`the broker did not get ready (${(err as Error).message}); its output:\n${output.all()}`)
  }
  const port = Number(/"listen":"[^"]*:(\d+)"/.exec(output.all())?.[1])
  return { child, port, output: output.all, stop }
}
