import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { appendFile, cp, stat, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { makeTempDir, removeDir, requireBuild, waitFor } from '../helpers/processes.js'
import { UP_READY_SENTINEL, waitUntilNoneUsing } from '../helpers/up-run.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
/** Not copied: installed (linked back instead), the checkout's own state. */
const NOT_COPIED = new Set(['node_modules', '.git', '.tessera', 'coverage', 'lib/node_modules'])

let tempDir: string | undefined

/** A copy of this repository (sources, dist/, build/) whose node_modules are the original's. */
async function copyRepository(into: string): Promise<string> {
  const copy = join(into, 'repo')
  await cp(ROOT, copy, {
    recursive: true,
    preserveTimestamps: true,
    filter: (source) => !NOT_COPIED.has(source.slice(ROOT.length).replace(/\/$/, '')),
  })
  await symlink(join(ROOT, 'node_modules'), join(copy, 'node_modules'))
  await symlink(join(ROOT, 'lib', 'node_modules'), join(copy, 'lib', 'node_modules'))
  return copy
}

interface NpmStart {
  readonly child: ChildProcess
  output: string
}

/** `npm start -- --data-dir <state>` in `repo`, in a process group of its own (as in a terminal). */
function npmStart(repo: string, state: string): NpmStart {
  const child = spawn('npm', ['start', '--', '--data-dir', state], {
    cwd: repo,
    detached: true,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const run: NpmStart = { child, output: '' }
  const collect = (d: Buffer) => {
    run.output += d.toString()
  }
  child.stdout?.on('data', collect)
  child.stderr?.on('data', collect)
  return run
}

/** Starts, waits until up is ready, then Ctrl-C as a terminal sends it; returns what it printed. */
async function startAndStop(repo: string, state: string): Promise<string> {
  const run = npmStart(repo, state)
  const exited = once(run.child, 'exit')
  try {
    await waitFor(() => run.output.includes(UP_READY_SENTINEL), {
      timeoutMs: 240_000,
      failFast: () => run.child.exitCode !== null,
    })
  } catch (err) {
    throw new Error(`npm start did not come up (${(err as Error).message}):\n${run.output}`)
  } finally {
    if (run.child.exitCode === null && run.child.pid !== undefined) process.kill(-run.child.pid, 'SIGINT')
  }
  await exited
  await waitUntilNoneUsing(state)
  return run.output
}

async function mtimeMs(path: string): Promise<number> {
  return (await stat(path)).mtimeMs
}

afterAll(async () => {
  await removeDir(tempDir)
})

describe('npm start', () => {
  it('builds only when a source changed, and npm warns about nothing', { timeout: 600_000 }, async () => {
    requireBuild()
    tempDir = await makeTempDir('tessera-npm-start-')
    const repo = await copyRepository(tempDir)
    const state = join(tempDir, 'state')
    const stamp = join(repo, 'dist', 'build-stamp')
    const compiled = join(repo, 'dist', 'cli', 'up', 'instructions.js')

    // The copy's dist/ may or may not match its sources yet: after this start it does.
    const first = await startAndStop(repo, state)
    const [stampBefore, compiledBefore] = [await mtimeMs(stamp), await mtimeMs(compiled)]

    const second = await startAndStop(repo, state)
    expect(second).toContain('no build')
    expect(second).not.toContain('npm run build')
    expect(await mtimeMs(stamp)).toBe(stampBefore)
    expect(await mtimeMs(compiled)).toBe(compiledBefore)
    console.log(`npm start, unchanged tree: ${/Up in [\d.]+ s/.exec(second)?.[0]}`)

    await appendFile(join(repo, 'cli', 'up', 'instructions.ts'), '\n// changed by npm-start.test.ts\n')
    const third = await startAndStop(repo, state)
    expect(third).toContain('The sources changed since the last build')
    expect(third).toMatch(/Built in [\d.]+ s/)
    expect(await mtimeMs(stamp)).not.toBe(stampBefore)
    expect(await mtimeMs(compiled)).not.toBe(compiledBefore)
    console.log(`npm start, one source changed: ${/Built in [\d.]+ s/.exec(third)?.[0]}`)

    for (const output of [first, second, third]) expect(output).not.toMatch(/npm warn/i)
  })
})
