import { createHash } from 'node:crypto'
import { realpathSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { runToEnd } from '../helpers/child-process.js'
import { makeTempDir, removeDir, requireBuild, runCli } from '../helpers/processes.js'
import { childPids, endUpRuns, isAlive, startUp, type UpRun, waitUntilUp } from '../helpers/up-run.js'

const dirs: string[] = []

/** The printed shell setup (exports, alias) and the five steps. */
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
  it('serves the printed steps (refused, pending, approved, served), stops on Ctrl-C, reuses its state, refuses a stale one', async () => {
    requireBuild()
    const dir = await makeTempDir('tessera-up-')
    dirs.push(dir)
    const first = startUp(dir)
    const readyMs = await waitUntilUp(first)
    // No --port: a free one, said so (a taken 8081 once stopped a first run).
    expect(first.stdout).toMatch(/agent API 127\.0\.0\.1:\d+, a free port/)
    const { setup, steps } = instructionsOf(first.stdout)
    expect(setup).toHaveLength(3)
    expect(steps).toHaveLength(5)
    const [refused = '', list = '', approve = '', x509 = '', jwt = ''] = steps
    // No uid-wide entry: the steps go through consent.
    expect(steps.join('\n')).not.toContain('entry create')

    // 1. Refused, and pending.
    const denied = await runStep(setup, refused)
    expect(denied.code).not.toBe(0)
    expect(denied.stderr).toContain('ERR_NO_IDENTITY')
    // 2. Who asked: this uid, the node binary that runs the CLI, its hash.
    const listed = await runStep(setup, list)
    expect(listed.code, listed.stderr).toBe(0)
    const uid = process.getuid?.() ?? 0
    expect(listed.stdout).toContain(`(uid ${uid},`)
    const node = realpathSync(process.execPath)
    expect(listed.stdout).toContain(`Binary        : ${node}`)
    const hash = createHash('sha256')
      .update(await readFile(node))
      .digest('hex')
    expect(listed.stdout).toContain(hash)
    const requestId = /Request ID\s*:\s*(\S+)/.exec(listed.stdout)?.[1]
    expect(requestId).toBeDefined()
    // 3. Approve it with the ID step 2 showed, as the user pastes it.
    expect(approve).toContain('<request-id>')
    const approved = await runStep(setup, approve.replace('<request-id>', requestId ?? ''))
    expect(approved.code, approved.stderr).toBe(0)
    const userId = /SPIFFE ID\s*:\s*(\S+)/.exec(approved.stdout)?.[1]
    expect(userId).toMatch(/^spiffe:\/\/tessera\.local\/user\/[^/]+\/[^/]+$/)
    expect(approved.stdout).toContain(`unix:sha256:${hash}`)
    expect(approved.stdout).toContain(`unix:uid:${uid}`)
    // 4. Served.
    const fetched = await runStep(setup, x509)
    const firstSvidMs = performance.now() - first.startedMs
    expect(fetched.code, fetched.stderr).toBe(0)
    expect(/SPIFFE ID\s*:\s*(\S+)/.exec(fetched.stdout)?.[1]).toBe(userId)
    // 5. A JWT-SVID.
    const minted = await runStep(setup, jwt)
    expect(minted.code, minted.stderr).toBe(0)
    expect(jwtClaims(minted.stdout)).toMatchObject({ sub: userId, aud: ['demo'] })
    const reported = /Up in ([\d.]+) s/.exec(first.stdout)?.[1]
    console.log(
      `cold start: tessera up → ready ${readyMs.toFixed(0)} ms (it reports ${reported} s); ` +
        `→ first X509-SVID served, steps 1–4 included: ${firstSvidMs.toFixed(0)} ms`,
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
    expect(second.stdout).toContain('approved on an earlier run')
    const again = instructionsOf(second.stdout)
    const refetched = await runStep(again.setup, again.steps[0] ?? '')
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
