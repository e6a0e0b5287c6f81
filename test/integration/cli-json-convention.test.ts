import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { listCommands } from '../helpers/cli-help.js'
import { CLI_PATH, jsonOf } from '../helpers/processes.js'
import { openForOtherUsers, probe, type Stack, startStack } from '../helpers/stack.js'
import { TestCa } from '../helpers/test-ca.js'

/**
 * One JSON convention for every `--output json`: snake_case field names and times as Unix seconds
 * (SPIRE's, whose field names the commands SPIRE also has use). Keys under these fields are data
 * (trust domain IDs, JWT claim names), not field names.
 */
const DATA_MAPS = new Set(['federated_bundles', 'claims'])
const SNAKE_CASE = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/
/** Unix seconds fit in 11 digits until the year 5138; milliseconds since 1973 do not. */
const MAX_UNIX_SECONDS = 99_999_999_999

/** Every way `value` breaks the convention, as `path: problem`. */
function conventionProblems(value: unknown, path = '$'): string[] {
  if (typeof value === 'string') return ISO_TIME.test(value) ? [`${path}: a time as text (${value})`] : []
  if (Array.isArray(value)) return value.flatMap((v, i) => conventionProblems(v, `${path}[${i}]`))
  if (value === null || typeof value !== 'object') return []
  return Object.entries(value).flatMap(([key, v]) => {
    const at = `${path}.${key}`
    const problems = SNAKE_CASE.test(key) ? [] : [`${at}: not snake_case`]
    if (
      /(?:^|_)at$/.test(key) &&
      !(Number.isInteger(v) && (v as number) >= 0 && (v as number) <= MAX_UNIX_SECONDS)
    )
      problems.push(`${at}: not Unix seconds (${JSON.stringify(v)})`)
    if (DATA_MAPS.has(key)) return problems
    return [...problems, ...conventionProblems(v, at)]
  })
}

const TD = 'tessera.local'
const uid = process.getuid?.() ?? 0
const NOBODY = { uid: 65534, gid: 65534 }
const STRANGER = { uid: 65533, gid: 65533 }
let stack: Stack

beforeAll(async () => {
  stack = await startStack({ trustDomain: TD })
  await stack.registerEntry({ spiffeId: `spiffe://${TD}/me`, selectors: [`unix:uid:${uid}`], hint: 'me' })
})
afterAll(async () => {
  await stack?.stop()
})
afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') console.error(stack?.output())
})

async function json(args: string[]): Promise<unknown> {
  return jsonOf(await stack.cli([...args, '--output', 'json']))
}

/** `api watch --output json`: its first line, then Ctrl-C. */
async function firstWatchLine(): Promise<unknown> {
  const child = spawn(process.execPath, [CLI_PATH, 'api', 'watch', '--output', 'json'], {
    env: { SPIFFE_ENDPOINT_SOCKET: `unix://${stack.socketPath}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')))
    })
    child.once('exit', () => reject(new Error(`api watch exited before printing: ${out}`)))
  })
  child.kill('SIGINT')
  return JSON.parse(line)
}

/** Two pending requests: probes as two uids that match no entry (this process's uid has one). */
async function pendingRequests(): Promise<string[]> {
  await openForOtherUsers(stack)
  for (const runAs of [NOBODY, STRANGER]) await probe(stack.socketPath, ['x509'], runAs)
  const deadline = Date.now() + 20_000
  for (;;) {
    const { requests } = (await json(['approval', 'list'])) as { requests: { id: string; uid: number }[] }
    const ids = [NOBODY, STRANGER].map((u) => requests.find((r) => r.uid === u.uid)?.id)
    if (ids.every((id) => id !== undefined)) return ids as string[]
    if (Date.now() > deadline) throw new Error('no pending requests came')
    await new Promise((r) => setTimeout(r, 100))
  }
}

describe('--output json', () => {
  it('is snake_case with Unix seconds in every command that has it', async () => {
    const partner = await TestCa.create('partner.org')
    const partnerPem = join(stack.dir, 'partner.pem')
    await writeFile(partnerPem, partner.bundlePem)
    const created = (await json([
      ...['entry', 'create', '--spiffe-id', `spiffe://${TD}/json`, '--parent-id', stack.agentAlias],
      ...['--selector', 'unix:uid:4242', '--expires-at', '2031-01-01T00:00:00Z'],
    ])) as { id: string }
    const [agentId] = ((await json(['agent', 'list'])) as { agents: { spiffe_id: string }[] }).agents.map(
      (a) => a.spiffe_id,
    )
    const token = ((await json(['api', 'fetch', 'jwt', '--audience', 'a'])) as { svids: { svid: string }[] })
      .svids[0]?.svid
    const [toApprove, toDeny] = await pendingRequests()
    // Every command with --output, and how to run it; ban and evict (which cut the agent off) last.
    const runs: Array<[string, () => Promise<unknown>]> = [
      ['entry create', async () => created],
      ['entry show', () => json(['entry', 'show'])],
      ['entry update', () => json(['entry', 'update', '--id', created.id, '--hint', 'x'])],
      ['token generate', () => json(['token', 'generate'])],
      ['agent list', () => json(['agent', 'list'])],
      ['agent show', () => json(['agent', 'show', '--spiffe-id', agentId ?? ''])],
      ['bundle set', () => json(['bundle', 'set', '--id', 'partner.org', '--path', partnerPem])],
      ['bundle show', () => json(['bundle', 'show'])],
      ['bundle list', () => json(['bundle', 'list'])],
      ['server healthcheck', () => json(['server', 'healthcheck'])],
      ['healthcheck', () => json(['healthcheck'])],
      ['api fetch x509', () => json(['api', 'fetch', 'x509', '--include-key'])],
      ['api fetch jwt', () => json(['api', 'fetch', 'jwt', '--audience', 'a'])],
      ['api fetch wit', () => json(['api', 'fetch', 'wit', '--include-key'])],
      ['api validate jwt', () => json(['api', 'validate', 'jwt', '--audience', 'a', '--token', token ?? ''])],
      ['api watch', firstWatchLine],
      ['task begin', () => json(['task', 'begin', '--scope', 's', '--audience', 'a', '--purpose', 'p'])],
      ['task list', () => json(['task', 'list'])],
      [
        'task end',
        async () => {
          const { task_id } = (await json([
            'task',
            'begin',
            '--scope',
            's',
            '--audience',
            'a',
            '--purpose',
            'p',
          ])) as {
            task_id: string
          }
          return json(['task', 'end', task_id])
        },
      ],
      ['approval list', () => json(['approval', 'list', '--all'])],
      ['approval show', () => json(['approval', 'show', '--id', toApprove ?? ''])],
      [
        'approval approve',
        () =>
          json([
            'approval',
            'approve',
            '--id',
            toApprove ?? '',
            '--spiffe-id',
            `spiffe://${TD}/ok`,
            '--for',
            '1h',
          ]),
      ],
      ['approval deny', () => json(['approval', 'deny', '--id', toDeny ?? ''])],
      ['audit verify', () => json(['audit', 'verify', '--live', join(stack.dir, 'server', 'audit.log')])],
      ['audit tail', () => json(['audit', 'tail', join(stack.dir, 'server', 'audit.log')])],
      ['audit checkpoints', () => json(['audit', 'checkpoints'])],
      [
        'audit search',
        () => json(['audit', 'search', '--event', 'entry.changed', join(stack.dir, 'server', 'audit.log')]),
      ],
      ['svid revoke', () => json(['svid', 'revoke', '--spiffe-id', `spiffe://${TD}/json`])],
      ['svid revocations', () => json(['svid', 'revocations'])],
      ['bundle delete', () => json(['bundle', 'delete', '--id', 'partner.org'])],
      ['entry delete', () => json(['entry', 'delete', '--id', created.id])],
      ['agent ban', () => json(['agent', 'ban', '--spiffe-id', agentId ?? ''])],
      ['agent evict', () => json(['agent', 'evict', '--spiffe-id', agentId ?? ''])],
    ]
    const withOutput = (await listCommands())
      .filter((c) => c.options.some((o) => o.names.includes('--output')))
      .map((c) => c.path.join(' '))
    expect(runs.map(([name]) => name).sort()).toEqual([...withOutput].sort())
    // Changes first and the agent's removal last, each in order; what only reads runs between them,
    // four commands at a time (each is a Node process that mostly waits for its start-up).
    const first = ['entry create', 'entry update', 'token generate', 'bundle set', 'approval approve']
    first.push('approval deny', 'svid revoke')
    const last = ['bundle delete', 'entry delete', 'agent ban', 'agent evict']
    const phase = (names: string[]) => runs.filter(([name]) => names.includes(name))
    const reads = runs.filter(([name]) => !first.includes(name) && !last.includes(name))
    const problems: string[] = []
    const check = async ([name, run]: (typeof runs)[number]) => {
      problems.push(...conventionProblems(await run(), name))
    }
    for (const r of phase(first)) await check(r)
    for (let i = 0; i < reads.length; i += 4) await Promise.all(reads.slice(i, i + 4).map(check))
    for (const r of phase(last)) await check(r)
    expect(problems).toEqual([])
  })
})
