import { readFile, writeFile } from 'node:fs/promises'
import { request } from 'node:https'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type EchoTool, startEchoTool } from '../helpers/echo-tool.js'
import { type GatewayProcess, startGatewayProcess } from '../helpers/gateway.js'
import { jsonOf, waitFor } from '../helpers/processes.js'
import { type Stack, startStack } from '../helpers/stack.js'

/**
 * The audit chain on the files real processes write: a server, an agent and a TLS gateway, each
 * signing checkpoints (every 4 or 2 lines, and at stop) with its own SVID; `tessera audit verify`
 * passes on them and names the first bad line of a copy with a line edited, deleted, swapped or cut.
 */
const TD = 'tessera.local'
const GATEWAY_ID = `spiffe://${TD}/tools/gateway`
const uid = process.getuid?.() ?? 0
let stack: Stack
let tool: EchoTool
let gateway: GatewayProcess
let logs: { server: string; agent: string; gateway: string }
let bundle: string

/** One HTTPS request to the gateway without a token: a denial, and so one audit line. */
function unauthenticatedCall(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/x', rejectUnauthorized: false }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', reject)
    req.end()
  })
}

beforeAll(async () => {
  const every = ['--audit-checkpoint-lines', '4']
  stack = await startStack({ trustDomain: TD, serverArgs: every, agentArgs: every })
  logs = {
    server: join(stack.dir, 'server', 'audit.log'),
    agent: join(stack.dir, 'agent', 'audit.log'),
    gateway: join(stack.dir, 'gateway-audit.log'),
  }
  bundle = join(stack.dir, 'bundle.pem')
  await stack.registerEntry({ spiffeId: GATEWAY_ID, selectors: [`unix:uid:${uid}`] })
  await waitFor(async () => (await stack.cli(['api', 'fetch', 'x509'])).code === 0, { timeoutMs: 10_000 })
  tool = await startEchoTool(join(stack.dir, 'tool.sock'))
  gateway = await startGatewayProcess(
    [
      ...['--listen', '127.0.0.1:0', '--upstream', `unix://${tool.socketPath}`, '--audience', 'tool.local'],
      ...['--tls', '--audit-log-path', logs.gateway, '--audit-checkpoint-lines', '2'],
    ],
    { SPIFFE_ENDPOINT_SOCKET: `unix://${stack.socketPath}` },
  )
  for (let i = 0; i < 3; i++) expect(await unauthenticatedCall(gateway.port)).toBe(401)
}, 120_000)

afterAll(async () => {
  await gateway?.stop()
  await tool?.close()
  await stack?.stop()
})

async function copyWith(name: string, change: (lines: string[]) => string[]): Promise<string> {
  const lines = (await readFile(logs.server, 'utf8')).split('\n').slice(0, -1)
  const path = join(stack.dir, name)
  await writeFile(path, `${change(lines).join('\n')}\n`)
  return path
}

describe('tessera audit verify', () => {
  it('passes on the live files with the bundle from the Workload API, counting the unsigned tail', async () => {
    const result = await stack.cli(['audit', 'verify', '--live', '--output', 'json', logs.server, logs.agent])
    expect(result.code, result.stderr).toBe(0)
    const { files } = jsonOf<{ files: Array<{ ok: boolean; result: { origins: string[] } }> }>(result)
    expect(files.map((f) => f.ok)).toEqual([true, true])
    expect(files[0]?.result.origins).toEqual([`spiffe://${TD}/tessera/server`])
  })

  it('passes on the closed files of the server, the agent and the gateway, each signed by its own SVID', async () => {
    await gateway.stop()
    await stack.agent().stop()
    await stack.stopServer()
    const result = await stack.cli([
      'audit',
      'verify',
      '--bundle',
      bundle,
      logs.server,
      logs.agent,
      logs.gateway,
    ])
    expect(result.code, result.stderr).toBe(0)
    const out = result.stdout.split('\n')
    expect(out[0]).toMatch(
      new RegExp(
        `audit\\.log: ok, \\d+ lines, [2-9]\\d* checkpoint\\(s\\) signed by spiffe://${TD}/tessera/server$`,
      ),
    )
    expect(out[1]).toMatch(
      new RegExp(`ok, \\d+ lines, [1-9]\\d* checkpoint\\(s\\) signed by spiffe://${TD}/tessera/agent/`),
    )
    expect(out[2]).toMatch(new RegExp(`ok, \\d+ lines, [2-9]\\d* checkpoint\\(s\\) signed by ${GATEWAY_ID}$`))
    const gatewayLines = (await readFile(logs.gateway, 'utf8')).split('\n').slice(0, -1)
    expect(gatewayLines.map((l) => JSON.parse(l).event)).toContain('call.denied')
  })

  it("continues the server's chain across a restart, and the server refuses to start on a file whose chain is broken", async () => {
    const before = await readFile(logs.server, 'utf8')
    await stack.startServer()
    const token = await stack.cli(['token', 'generate'])
    expect(token.code, token.stderr).toBe(0)
    await stack.stopServer()
    const after = await readFile(logs.server, 'utf8')
    expect(after.startsWith(before)).toBe(true)
    expect(after.length).toBeGreaterThan(before.length)
    const verified = await stack.cli(['audit', 'verify', '--bundle', bundle, '--output', 'json', logs.server])
    expect(verified.code, verified.stderr).toBe(0)
    const ls = before.split('\n').slice(0, -1)
    ls[1] = JSON.stringify({ ...JSON.parse(ls[1] as string), resource: 'spiffe://evil' })
    await writeFile(logs.server, `${ls.join('\n')}\n`)
    await expect(stack.startServer()).rejects.toThrow(
      /error ERR_AUDIT_CHAIN_BROKEN: audit log \S+ line 3 does not hold the hash of the line before it/,
    )
    await writeFile(logs.server, after)
  })

  const broken: Array<[string, (lines: string[]) => string[], RegExp]> = [
    [
      'an edited line',
      (ls) =>
        ls.map((l, i) => (i === 1 ? JSON.stringify({ ...JSON.parse(l), resource: 'spiffe://evil' }) : l)),
      /ERR_AUDIT_CHAIN_BROKEN: .*an-edited-line\.log: line 2 was edited/,
    ],
    [
      'a deleted line',
      (ls) => ls.filter((_, i) => i !== 2),
      /ERR_AUDIT_CHAIN_BROKEN: .*: line 3 holds seq 3 where seq 2 was expected/,
    ],
    [
      'two swapped lines',
      (ls) => [ls[0] as string, ls[2] as string, ls[1] as string, ...ls.slice(3)],
      /ERR_AUDIT_CHAIN_BROKEN: .*: line 2 is out of order: it holds seq 2, and line 3 holds seq 1/,
    ],
    [
      'a cut tail',
      (ls) => ls.slice(0, -1),
      /ERR_AUDIT_CHAIN_BROKEN: .*: line \d+ and every line after it are signed by no checkpoint/,
    ],
  ]
  it.each(broken)('fails on %s and names the line', async (name, change, expected) => {
    const file = await copyWith(`${name.replaceAll(' ', '-')}.log`, change)
    const result = await stack.cli(['audit', 'verify', '--bundle', bundle, file])
    expect(result.code).toBe(1)
    expect(result.stderr.trim()).toMatch(expected)
  })
})

describe('tessera audit tail and search', () => {
  it('finds the SVIDs issued, and shows the last lines', async () => {
    const found = await stack.cli([
      'audit',
      'search',
      '--event',
      'svid.issued',
      '--id',
      GATEWAY_ID,
      '--output',
      'json',
      logs.agent,
    ])
    expect(found.code, found.stderr).toBe(0)
    const { lines } = jsonOf<{ lines: Array<{ event: string; resource: string; logged_at: number }> }>(found)
    expect(lines.length).toBeGreaterThan(0)
    for (const l of lines) expect(l).toMatchObject({ event: 'svid.issued', resource: GATEWAY_ID })
    const tail = await stack.cli(['audit', 'tail', '-n', '2', logs.server])
    expect(tail.code, tail.stderr).toBe(0)
    expect(tail.stdout.trim().split('\n')).toHaveLength(2)
    expect(tail.stdout).toMatch(
      /audit\.checkpoint {2}allowed {2}checkpoint spiffe:\/\/tessera\.local\/tessera\/server/,
    )
  })
})
