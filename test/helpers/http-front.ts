import type { ChildProcess } from 'node:child_process'
import { hasExited, spawnPiped, stopChild } from './child-process.js'
import { CLI_PATH, waitFor } from './processes.js'

/** A `tessera gateway` or `tessera broker` child. */
export interface HttpFrontProcess {
  readonly child: ChildProcess
  readonly port: number
  output(): string
  stop(): Promise<void>
}

/** Spawns `tessera <app> <args>` with `env` only and waits for its `<app> ready` line and port. */
export async function startHttpFrontProcess(
  app: 'gateway' | 'broker',
  args: ReadonlyArray<string>,
  env: Readonly<Record<string, string>>,
): Promise<HttpFrontProcess> {
  const { child, output } = spawnPiped(process.execPath, [CLI_PATH, app, ...args], { env: { ...env } })
  const stop = () => stopChild(child)
  try {
    await waitFor(() => output.all().includes(`"msg":"${app} ready"`), {
      timeoutMs: 60_000,
      failFast: () => hasExited(child),
    })
  } catch (err) {
    await stop()
    throw new Error(`the ${app} did not get ready (${(err as Error).message}); its output:\n${output.all()}`)
  }
  const port = Number(/"listen":"[^"]*:(\d+)"/.exec(output.all())?.[1])
  return { child, port, output: output.all, stop }
}
