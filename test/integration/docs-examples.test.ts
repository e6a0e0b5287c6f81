import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type EchoTool, startEchoTool } from '../helpers/echo-tool.js'
import { CLI_PATH } from '../helpers/processes.js'
import { type RunnableBlock, runnableBlocksOf } from '../helpers/runnable-blocks.js'
import { type Stack, startStack } from '../helpers/stack.js'

/** The pages a new user follows, in the order they read them. */
const PAGES = ['README.md', 'docs/gateway.md']

/** What `npm start` prints and the test sets up itself: the env and the alias, as real values. */
const GIVEN_LINES = [/^export SPIFFE_ENDPOINT_SOCKET=/, /^export TESSERA_ADMIN_SOCKET=/, /^alias tessera=/]

/** A command that keeps running (the user starts it in another terminal), and its ready line. */
const LONG_RUNNING = /^tessera gateway\b/
const READY_LINE = '"msg":"gateway ready"'

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  return port
}

/**
 * The one bash script a block becomes: `set -e`, curl failing on an HTTP error (a user would see the
 * refusal), each long-running command started in the background and waited for until it is ready.
 */
function scriptOf(block: RunnableBlock, substitute: (command: string) => string): string {
  const lines = [
    'set -euo pipefail',
    'curl() { command curl --fail-with-body --silent --show-error --max-time 20 "$@"; }',
    "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT",
    "ready() { for _ in $(seq 1 300); do grep -q '" +
      READY_LINE +
      '\' "$1" && return 0; kill -0 "$2" 2>/dev/null || break; sleep 0.1; done; cat "$1" >&2; return 1; }',
  ]
  block.commands.forEach((command, i) => {
    if (GIVEN_LINES.some((given) => given.test(command))) return
    const line = substitute(command)
    if (LONG_RUNNING.test(line)) {
      const log = `"$PWD/background-${i}.log"`
      lines.push(`${line} > ${log} 2>&1 &`, `ready ${log} $!`)
    } else lines.push(line)
  })
  return `${lines.join('\n')}\n`
}

let stack: Stack
let tool: EchoTool
let home: string
let substitutions: ReadonlyArray<readonly [string, string]>

beforeAll(async () => {
  stack = await startStack({ trustDomain: 'tessera.local' })
  home = join(stack.dir, 'home')
  await mkdir(join(home, 'bin'), { recursive: true })
  // `alias tessera="node …/dist/cli/main.js"`, as a program so that `tessera … &` is the process itself.
  await writeFile(join(home, 'bin', 'tessera'), `#!/bin/sh\nexec "${process.execPath}" "${CLI_PATH}" "$@"\n`)
  await chmod(join(home, 'bin', 'tessera'), 0o755)
  tool = await startEchoTool(join(stack.dir, 'tool.sock'))
  const [a, b, c] = await Promise.all([freePort(), freePort(), freePort()])
  // What a reader adapts to their machine: where their tool listens, and ports that are free.
  substitutions = [
    ['/run/user/1000/tool.sock', tool.socketPath],
    ['/run/my-tool.sock', tool.socketPath],
    ['127.0.0.1:8700', `127.0.0.1:${a}`],
    ['127.0.0.1:8080', `127.0.0.1:${b}`],
    ['127.0.0.1:8443', `127.0.0.1:${c}`],
    ['localhost:8443', `localhost:${c}`],
  ]
})
afterAll(async () => {
  await tool?.close()
  await stack?.stop()
})

async function runBlock(block: RunnableBlock) {
  const substitute = (command: string) =>
    substitutions.reduce((text, [from, to]) => text.split(from).join(to), command)
  const script = join(home, 'block.sh')
  await writeFile(script, scriptOf(block, substitute))
  const child = spawn('bash', [script], {
    cwd: home,
    env: {
      PATH: `${join(home, 'bin')}:${process.env['PATH'] ?? '/usr/bin:/bin'}`,
      HOME: home,
      USER: 'reader',
      SPIFFE_ENDPOINT_SOCKET: `unix://${stack.socketPath}`,
      TESSERA_ADMIN_SOCKET: stack.adminSocket,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (d: Buffer) => {
    output += d.toString()
  })
  child.stderr.on('data', (d: Buffer) => {
    output += d.toString()
  })
  const [code] = (await once(child, 'close')) as [number | null]
  return { code, output }
}

describe('the shell examples of README.md and docs/gateway.md, run in order as a reader pastes them', () => {
  it('every runnable block succeeds, and the tool is reached with a JWT-SVID and with mTLS', async () => {
    const blocks = (
      await Promise.all(
        PAGES.map(async (page) =>
          runnableBlocksOf(
            await readFile(fileURLToPath(new URL(`../../${page}`, import.meta.url)), 'utf8'),
            page,
          ),
        ),
      )
    ).flat()
    expect(blocks.map((b) => b.where.split(':')[0])).toEqual([
      'README.md',
      'README.md',
      'docs/gateway.md',
      'docs/gateway.md',
    ])
    for (const block of blocks) {
      const { code, output } = await runBlock(block)
      expect(code, `${block.where} failed:\n${output}\n${stack.output().slice(-3000)}`).toBe(0)
    }
    const methods = tool.seen.map((r) => r.headers['x-tessera-auth-method'])
    expect(methods).toEqual(['jwt', 'jwt', 'mtls'])
    expect(tool.seen[2]?.headers['x-tessera-spiffe-id']).toMatch(/^spiffe:\/\/tessera\.local\//)
  })
})
