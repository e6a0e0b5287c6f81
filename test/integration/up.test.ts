import { readFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { runToEnd } from '../helpers/child-process.js'
import { makeTempDir, removeDir, requireBuild, runCli } from '../helpers/processes.js'
import { childPids, endUpRuns, isAlive, startUp, type UpRun, waitUntilUp } from '../helpers/up-run.js'

const dirs: string[] = []

/** The printed shell setup (exports, alias) and the three steps. */
function instructionsOf(stdout: string) {
  const lines = stdout.split('\n')
  const setup = lines.filter((l) => l.startsWith('export ') || l.startsWith('alias tessera='))
  const steps = lines.filter((l) => l.startsWith('tessera '))
  return { setup, steps }
}

/** Runs one printed step in bash exactly as a user pastes it, after the printed setup lines. */
async function runStep(setup: ReadonlyArray<string>, step: string) {
  const script = ['shopt -s expand_aliases', ...setup, step].join('\n')
  return runToEnd('bash', ['-c', script], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    timeoutMs: 60_000,
  })
}

function jwtClaims(output: string): Record<string, unknown> {
  const token = /eyJ[\w-]+\.([\w-]+)\.[\w-]+/.exec(output)
  if (!token?.[1]) throw new Error(`no JWT in:\n${output}`)
  return JSON.parse(Buffer.from(token[1], 'base64url').toString()) as Record<string, unknown>
}

async function agentIdsInLog(dir: string): Promise<string[]> {
  const log = await readFile(`${dir}/agent.log`, 'utf8')
  return log
    .split('\n')
    .filter((l) => l.includes('"msg":"agent ready"'))
    .map((l) => String((JSON.parse(l) as { spiffeId: string }).spiffeId))
}

/** SIGINT, then: exit 0, and neither child is left. */
async function interrupt(run: UpRun): Promise<void> {
  const pids = childPids(run)
  run.child.kill('SIGINT')
  expect(await run.exitCode).toBe(0)
  expect(pids.filter(isAlive)).toEqual([])
  expect(run.stdout.indexOf('Stopping the agent')).toBeLessThan(run.stdout.indexOf('Stopping the server'))
}

afterEach(async () => {
  await endUpRuns()
  for (const dir of dirs.splice(0)) await removeDir(dir)
})

describe('tessera up', () => {
  it('serves the printed three steps, stops on Ctrl-C, reuses its state, refuses a stale one', async () => {
    requireBuild()
    const dir = await makeTempDir('tessera-up-')
    dirs.push(dir)
    const first = startUp(dir)
    const readyMs = await waitUntilUp(first)
    // No --port: a free one, said so (a taken 8081 once stopped a first run).
    expect(first.stdout).toMatch(/agent API 127\.0\.0\.1:\d+, a free port/)
    const { setup, steps } = instructionsOf(first.stdout)
    expect(setup).toHaveLength(3)
    expect(steps).toHaveLength(3)
    const [register = '', x509 = '', jwt = ''] = steps
    const uid = process.getuid?.() ?? 0
    expect(register).toContain(`--selector unix:uid:${uid}`)
    const userId = /--spiffe-id (\S+)/.exec(register)?.[1]
    expect(userId).toMatch(/^spiffe:\/\/tessera\.local\/user\//)

    const registered = await runStep(setup, register)
    expect(registered.code, registered.stderr).toBe(0)
    const fetched = await runStep(setup, x509)
    const firstSvidMs = performance.now() - first.startedMs
    expect(fetched.code, fetched.stderr).toBe(0)
    expect(/SPIFFE ID\s*:\s*(\S+)/.exec(fetched.stdout)?.[1]).toBe(userId)
    const minted = await runStep(setup, jwt)
    expect(minted.code, minted.stderr).toBe(0)
    expect(jwtClaims(minted.stdout)).toMatchObject({ sub: userId, aud: ['demo'] })
    const reported = /Up in ([\d.]+) s/.exec(first.stdout)?.[1]
    console.log(
      `cold start: tessera up → ready ${readyMs.toFixed(0)} ms (it reports ${reported} s); ` +
        `→ first X509-SVID served, steps 1–2 included: ${firstSvidMs.toFixed(0)} ms`,
    )
    await interrupt(first)

    const second = startUp(dir)
    await waitUntilUp(second)
    const ids = await agentIdsInLog(dir)
    expect(ids).toHaveLength(2)
    expect(ids[1]).toBe(ids[0])
    const adminSocket = /TESSERA_ADMIN_SOCKET=(\S+)/.exec(second.stdout)?.[1] ?? ''
    const agents = await runCli(['agent', 'list', '--output', 'json'], { socket: adminSocket })
    expect((JSON.parse(agents.stdout) as { agents: unknown[] }).agents).toHaveLength(1)
    const again = instructionsOf(second.stdout)
    const refetched = await runStep(again.setup, x509)
    expect(/SPIFFE ID\s*:\s*(\S+)/.exec(refetched.stdout)?.[1], refetched.stderr).toBe(userId)
    const reminted = await runStep(again.setup, jwt)
    expect(reminted.code, reminted.stderr).toBe(0)
    expect(jwtClaims(reminted.stdout)).toMatchObject({ sub: userId, aud: ['demo'] })
    await interrupt(second)

    // The server's state gone, the agent's kept: a clear refusal, and the server it started is stopped.
    await removeDir(`${dir}/server`)
    const third = startUp(dir)
    expect(await third.exitCode).toBe(1)
    expect(third.stderr).toMatch(/^error ERR_CONFIG_INVALID: /)
    expect(childPids(third).filter(isAlive)).toEqual([])
  })

  it('fails with one line, ERR_ADDRESS_IN_USE and the port, exit 1, when the port given is taken', async () => {
    requireBuild()
    const dir = await makeTempDir('tessera-up-port-')
    dirs.push(dir)
    const blocker = createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const port = (blocker.address() as { port: number }).port
    try {
      const run = startUp(dir, ['--port', String(port)])
      expect(await run.exitCode).toBe(1)
      expect(run.stderr.trim().split('\n')).toHaveLength(1)
      expect(run.stderr).toMatch(/^error ERR_ADDRESS_IN_USE: /)
      expect(run.stderr).toContain(String(port))
    } finally {
      blocker.close()
    }
  })
})
