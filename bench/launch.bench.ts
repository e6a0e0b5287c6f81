import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmod } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { callAdmin } from '../cli/admin-client.js'
import type { BenchResult } from './harness.js'
import { comparedRow } from './load/rows.js'
import { type BenchStack, CLI_PATH, startBenchStack } from './stack.js'

const FIRST_SVID = fileURLToPath(new URL('./load/first-svid.js', import.meta.url))
const NAME = 'bench'
const USER = `tessera-${NAME}`
const RUNS = 5

function hasUser(user: string): boolean {
  try {
    execFileSync('id', ['-u', user], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Spawns `argv` and resolves with the ms from the spawn to the first SVID the workload reports. */
async function timeToFirstSvid(argv: string[], env: Record<string, string>): Promise<number> {
  const t0 = performance.timeOrigin + performance.now()
  const child = spawn(process.execPath, argv, { cwd: '/', env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString()
  })
  child.stderr.on('data', (d: Buffer) => {
    out += d.toString()
  })
  const [code] = await once(child, 'exit')
  const at = /"atMs":([\d.]+)/.exec(out)
  if (code !== 0 || !at) throw new Error(`no SVID in the workload (exit ${code}): ${out}`)
  return Number(at[1]) - t0
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] as number
}

async function registerLaunchEntry(stack: BenchStack): Promise<void> {
  const entry = {
    spiffe_id: `spiffe://${stack.trustDomain}/bench/launched`,
    parent_id: stack.agentAlias,
    selectors: [
      { type: 'tessera', value: `launch:${NAME}` },
      { type: 'unix', value: `user:${USER}` },
    ],
  }
  await callAdmin(stack.admin, (o, cb) => stack.admin.entries.CreateEntry({ entry }, o, cb))
}

/**
 * `tessera launch` → first X509-SVID in the launched process (DESIGN §13, issue 9): the launcher's
 * own start, the per-launch Workload API, the delegated attestation of the process by the agent,
 * against the same workload started directly on the agent's socket. Root only (the launcher is).
 */
export async function benchLaunch(): Promise<BenchResult[]> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('launch bench skipped: `tessera launch` needs root\n')
    return []
  }
  const stack = await startBenchStack('bench-launch.local')
  const created = !hasUser(USER)
  try {
    await registerLaunchEntry(stack)
    await chmod(stack.dir, 0o711) // the service account reaches its socket under it
    const socketDir = join(stack.dir, 'launch')
    const launchArgv = [CLI_PATH, 'launch', '--as', NAME, '--socket', `unix://${stack.socketPath}`]
    launchArgv.push('--socket-dir', socketDir, '--', process.execPath, FIRST_SVID, '{}')
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' }
    // The first launch may create the account: not counted.
    await timeToFirstSvid(launchArgv, env)
    const launched: number[] = []
    const direct: number[] = []
    for (let i = 0; i < RUNS; i++) {
      launched.push(await timeToFirstSvid(launchArgv, env))
      direct.push(
        await timeToFirstSvid([FIRST_SVID, '{}'], {
          ...env,
          SPIFFE_ENDPOINT_SOCKET: `unix://${stack.socketPath}`,
        }),
      )
    }
    return [
      comparedRow(
        `tessera launch → first SVID in the launched process (median of ${RUNS}), vs started directly`,
        {
          value: median(launched),
          baseline: median(direct),
          unit: 'ms',
        },
      ),
    ]
  } finally {
    await stack.stop()
    if (created && hasUser(USER)) execFileSync('userdel', [USER])
  }
}
