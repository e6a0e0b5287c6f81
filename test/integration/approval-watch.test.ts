import { type ChildProcess, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { realpathSync } from 'node:fs'
import { appendFile, copyFile, readFile } from 'node:fs/promises'
import { userInfo } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type PipedChild, spawnPiped, stopChild } from '../helpers/child-process.js'
import { CLI_PATH } from '../helpers/processes.js'
import { type Stack, startStack } from '../helpers/stack.js'
import { unknownBinary } from '../helpers/unknown-binary.js'

const WAITER_PATH = fileURLToPath(new URL('../helpers/waiting-workload.mjs', import.meta.url))
const BRIDGE_PATH = fileURLToPath(new URL('../helpers/pty-bridge.py', import.meta.url))

/** `tessera approval watch` under a real pseudo-terminal; `type` is what the user types. */
interface Prompt {
  readonly child: ChildProcess
  screen(): string
  type(text: string): void
  /** Waits until the terminal shows `text` (after `from`, an offset in {@link screen}). */
  until(text: string | RegExp, from?: number): Promise<number>
}

function startWatch(stack: Stack, args: ReadonlyArray<string>): Prompt {
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', TESSERA_ADMIN_SOCKET: stack.adminSocket }
  const argv = [BRIDGE_PATH, process.execPath, CLI_PATH, 'approval', 'watch', ...args]
  const child = spawn('python3', argv, { cwd: '/', env, stdio: ['pipe', 'pipe', 'pipe'] })
  let screen = ''
  child.stdout.on('data', (d: Buffer) => {
    screen += d.toString()
  })
  child.stderr.on('data', (d: Buffer) => {
    screen += d.toString()
  })
  return {
    child,
    screen: () => screen,
    type: (text) => child.stdin.write(text),
    async until(text, from = 0) {
      const deadline = Date.now() + 20_000
      for (;;) {
        const rest = screen.slice(from)
        const at = typeof text === 'string' ? rest.indexOf(text) : rest.search(text)
        if (at >= 0) return from + at + 1
        if (Date.now() > deadline) throw new Error(`the prompt never showed ${text}:\n${screen}`)
        await new Promise((r) => setTimeout(r, 50))
      }
    },
  }
}

async function svidLine(waiter: PipedChild): Promise<{ ids: string[] }> {
  const deadline = Date.now() + 20_000
  for (;;) {
    const line = waiter.output
      .stdout()
      .split('\n')
      .find((l) => l.includes('"svid"'))
    if (line !== undefined) return JSON.parse(line) as { ids: string[] }
    if (Date.now() > deadline) throw new Error(`never served: ${waiter.output.all()}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

describe('tessera approval watch', () => {
  let stack: Stack
  const children: ChildProcess[] = []

  beforeAll(async () => {
    stack = await startStack({})
  })
  afterEach(async (ctx) => {
    for (const c of children.splice(0)) await stopChild(c, 'SIGKILL')
    if (ctx.task.result?.state === 'fail') console.log(stack.output())
  })
  afterAll(async () => {
    await stack?.stop()
  })

  it('prompts through a terminal with the facts, denies on n, approves on y and for a while on f, and the waiting programs get their SVIDs', async () => {
    const notified = join(stack.dir, 'notified.json')
    const prompt = startWatch(stack, [
      '--template',
      'spiffe://{trust_domain}/agents/{exe_name}',
      '--on-pending',
      `cat >> ${notified}`,
    ])
    children.push(prompt.child)
    await prompt.until('Watching for pending requests')

    // n: the first unknown binary is denied.
    const refused = await unknownBinary(stack, 'refused-tool')
    const refusedWaiter = spawnPiped(refused, [WAITER_PATH, stack.socketPath])
    children.push(refusedWaiter.child)
    const shown = await prompt.until('A program asks for an identity')
    let at = await prompt.until(`Binary        : ${refused}`, shown)
    const hash = createHash('sha256')
      .update(await readFile(refused))
      .digest('hex')
    const facts = prompt.screen().slice(shown)
    expect(facts).toContain(`User          : ${userInfo().username} (uid ${process.getuid?.()}`)
    expect(facts).toContain(`SHA-256       : ${hash}`)
    expect(facts).toContain(`Parent        : ${realpathSync(process.execPath)}`)
    at = await prompt.until('[y]es / [n]o / [f]or a while', at)
    prompt.type('n\n')
    at = await prompt.until(/Denied request \S+ until/, at)
    const denied = JSON.parse(
      (await stack.cli(['approval', 'list', '--all', '--output', 'json'])).stdout,
    ) as { requests: Array<{ exe_path: string; state: string; id: string }> }
    expect(denied.requests.find((r) => r.exe_path === refused)?.state).toBe('denied')
    // (Its binary is a link of the one approved next, whose entry pins the hash, not the path.)
    await stopChild(refusedWaiter.child, 'SIGKILL')

    // y: the second is approved with the template, and its waiting process is served.
    const wanted = await unknownBinary(stack, 'wanted-tool')
    const waiter = spawnPiped(wanted, [WAITER_PATH, stack.socketPath])
    children.push(waiter.child)
    at = await prompt.until(`Binary        : ${wanted}`, at)
    at = await prompt.until('[y]es / [n]o / [f]or a while', at)
    prompt.type('y\n')
    await prompt.until('Approved request', at)
    expect((await svidLine(waiter)).ids).toEqual(['spiffe://tessera.local/agents/wanted-tool'])

    // f: a binary of other bytes (so no entry pins it), approved for the while typed at the prompt.
    const forAWhile = join(stack.dir, 'bin', 'for-a-while-tool')
    await copyFile(process.execPath, forAWhile)
    await appendFile(forAWhile, 'other bytes\n')
    const whileWaiter = spawnPiped(forAWhile, [WAITER_PATH, stack.socketPath])
    children.push(whileWaiter.child)
    at = await prompt.until(`Binary        : ${forAWhile}`, at)
    at = await prompt.until('[y]es / [n]o / [f]or a while', at)
    prompt.type('f\n')
    at = await prompt.until('For how long', at)
    const typedAtS = Math.floor(Date.now() / 1000)
    prompt.type('30m\n')
    await prompt.until(
      /Approved request \S+: spiffe:\/\/tessera\.local\/agents\/for-a-while-tool \(entry \S+\) until/,
      at,
    )
    expect((await svidLine(whileWaiter)).ids).toEqual(['spiffe://tessera.local/agents/for-a-while-tool'])
    const entries = JSON.parse((await stack.cli(['entry', 'show', '--output', 'json'])).stdout) as {
      entries: Array<{ spiffe_id: string; expires_at: number }>
    }
    const expiry = entries.entries.find((e) => e.spiffe_id.endsWith('/for-a-while-tool'))?.expires_at ?? 0
    expect(expiry).toBeGreaterThanOrEqual(typedAtS + 1800)
    expect(expiry).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 1800)

    // --on-pending ran once per new request, with the request as JSON.
    const lines = (await readFile(notified, 'utf8')).split('\n').filter((l) => l !== '')
    expect(lines.map((l) => (JSON.parse(l) as { exe_path: string }).exe_path)).toEqual([
      refused,
      wanted,
      forAWhile,
    ])
    expect(JSON.parse(lines[1] ?? '{}')).toMatchObject({ sha256: hash, state: 'pending' })

    // Ctrl-D ends the watch.
    const exited = new Promise((r) => prompt.child.once('exit', r))
    prompt.child.stdin?.end()
    expect(await exited).toBe(0)
  })
})
