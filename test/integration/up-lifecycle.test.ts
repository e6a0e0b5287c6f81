import { readFile } from 'node:fs/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { makeTempDir, removeDir, requireBuild, waitFor } from '../helpers/processes.js'
import {
  childPids,
  endUpRuns,
  isAlive,
  processesUsing,
  startUp,
  waitUntilGone,
  waitUntilNoneUsing,
  waitUntilUp,
} from '../helpers/up-run.js'

const dirs: string[] = []

async function freshDir(): Promise<string> {
  const dir = await makeTempDir('tessera-up-life-')
  dirs.push(dir)
  return dir
}

async function readPid(path: string): Promise<number> {
  return Number((await readFile(path, 'utf8')).trim())
}

afterEach(async () => {
  await endUpRuns()
  for (const dir of dirs.splice(0)) {
    for (const pid of processesUsing(dir)) process.kill(pid, 'SIGKILL')
    await removeDir(dir)
  }
})

// `npm start | tee log` then Ctrl-C, or closing the terminal, once left the server running with
// parent 1. Whatever happens to `up`, its children stop.
describe('tessera up stops its children whatever happens to it', () => {
  it('kill -9 of up: the server and the agent notice and stop', async () => {
    requireBuild()
    const dir = await freshDir()
    const run = startUp(dir)
    await waitUntilUp(run)
    const pids = childPids(run)
    expect(pids).toHaveLength(2)
    run.child.kill('SIGKILL')
    await run.exitCode
    await waitUntilNoneUsing(dir)
    await waitUntilGone(pids)
  })

  it('its stdout closed (the pipe reader gone), then Ctrl-C: up stops them instead of dying of EPIPE', async () => {
    requireBuild()
    const dir = await freshDir()
    const run = startUp(dir)
    await waitUntilUp(run)
    run.child.stdout?.destroy()
    run.child.kill('SIGINT')
    expect(await run.exitCode).toBe(0)
    await waitUntilNoneUsing(dir)
    expect(run.stderr).toBe('')
  })

  it('its stdout closed before it writes anything: up stops the server it started and exits 1', async () => {
    requireBuild()
    const dir = await freshDir()
    const run = startUp(dir)
    run.child.stdout?.destroy()
    expect(await run.exitCode).toBe(1)
    await waitUntilNoneUsing(dir)
  })

  it('a child killed under it: one coded line naming it, the other stopped, exit 1', async () => {
    requireBuild()
    const dir = await freshDir()
    const run = startUp(dir)
    await waitUntilUp(run)
    const [serverPid = -1, agentPid = -1] = childPids(run)
    process.kill(serverPid, 'SIGKILL')
    expect(await run.exitCode).toBe(1)
    expect(run.stderr).toMatch(/^error ERR_[A-Z_]+: the server stopped unexpectedly \(signal SIGKILL\)/m)
    await waitUntilGone([agentPid])
  })

  it('SIGHUP with the terminal gone (stdout closed): up stops them', async () => {
    requireBuild()
    const dir = await freshDir()
    const run = startUp(dir)
    await waitUntilUp(run)
    run.child.stdout?.destroy()
    run.child.kill('SIGHUP')
    expect(await run.exitCode).toBe(0)
    await waitUntilNoneUsing(dir)
  })
})

describe('tessera up and a live leftover', () => {
  it('names the pid to stop (ERR_ALREADY_RUNNING), and a stale pid file is cleaned', async () => {
    requireBuild()
    const dir = await freshDir()
    const first = startUp(dir)
    await waitUntilUp(first)
    const serverPid = await readPid(`${dir}/server.pid`)

    // Another `up` on the same state while the first runs.
    const second = startUp(dir)
    expect(await second.exitCode).toBe(1)
    expect(second.stderr).toMatch(/^error ERR_ALREADY_RUNNING: /)
    expect(second.stderr).toContain(`pid ${serverPid}`)
    expect(second.stderr).toContain(`pid ${first.child.pid}`)
    expect(isAlive(serverPid)).toBe(true)

    // A server that cannot react (stopped) outlives its `up`: a true leftover.
    process.kill(serverPid, 'SIGSTOP')
    first.child.kill('SIGKILL')
    await first.exitCode
    const third = startUp(dir)
    expect(await third.exitCode).toBe(1)
    expect(third.stderr).toMatch(/^error ERR_ALREADY_RUNNING: /)
    expect(third.stderr).toContain(`pid ${serverPid}`)

    // Let it go on: it finds its lifeline closed and stops; its pid file is now stale.
    process.kill(serverPid, 'SIGCONT')
    await waitFor(() => !isAlive(serverPid), { timeoutMs: 20_000 })
    const fourth = startUp(dir)
    await waitUntilUp(fourth)
    const newServerPid = await readPid(`${dir}/server.pid`)
    expect(newServerPid).not.toBe(serverPid)
    fourth.child.kill('SIGINT')
    expect(await fourth.exitCode).toBe(0)
    await waitUntilNoneUsing(dir)
  })
})
