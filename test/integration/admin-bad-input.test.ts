import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { status } from '@grpc/grpc-js'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { Entry } from '../../common/gen/tessera/types/v1/Entry.js'
import { type AdminClients, callRaw, connectAdmin, failureOf } from '../helpers/admin-grpc.js'
import {
  type CliResult,
  dumpOutput,
  isRoot,
  jsonOf,
  killAllChildren,
  makeTempDir,
  removeDir,
  requireBuild,
  runCli,
  type ServerProcess,
  startServerProcess,
} from '../helpers/processes.js'

const TD = 'tessera.local'
const id = (path: string) => `spiffe://${TD}${path}`
const NOBODY = { uid: 65534, gid: 65534 }
const ONE_LINE = /^error (ERR_[A-Z_]+): [^\n]+\n$/
const asRoot = isRoot ? it : it.skip
if (!isRoot) console.warn('admin-bad-input: not root, skipping the tests that run the CLI as another uid')

let root: string
let server: ServerProcess | undefined
let shared: ServerProcess | undefined
let admin: AdminClients
let baseline: string

beforeAll(async () => {
  requireBuild()
  root = await makeTempDir('tessera-admin-bad-')
  server = await startServerProcess({ dataDir: join(root, 'server') })
  admin = connectAdmin(server.socket)
  const good = await tessera(
    'entry',
    'create',
    '--spiffe-id',
    id('/good'),
    '--parent-id',
    id('/a'),
    '--selector',
    'unix:uid:1',
  )
  expect(good.code, good.stderr).toBe(0)
  baseline = (await tessera('entry', 'show', '--output', 'json')).stdout
})
beforeEach((ctx) => {
  ctx.onTestFailed(() => dumpOutput([server, shared]))
})
afterAll(async () => {
  admin?.close()
  await Promise.all([server?.stop(), shared?.stop()])
  await killAllChildren()
  await removeDir(root)
})

function tessera(...args: string[]): Promise<CliResult> {
  return runCli(args, { socket: server?.socket ?? '' })
}

/** The code of the single `error ERR_…: …` line a failed run printed (and that it failed). */
function failureCode(result: CliResult): string | undefined {
  expect(result.code, result.stdout).not.toBe(0)
  expect(result.stderr).toMatch(ONE_LINE)
  expect(result.stderr).not.toMatch(/\n\s+at /)
  return ONE_LINE.exec(result.stderr)?.[1]
}

const create = (...flags: string[]) => ['entry', 'create', ...flags]
const valid = ['--spiffe-id', id('/w'), '--parent-id', id('/a'), '--selector', 'unix:uid:2']

describe('bad input through the CLI', () => {
  it.each<[string, string[], string]>([
    [
      'a malformed SPIFFE ID',
      create('--spiffe-id', 'spiffe://Bad.TD/w', '--parent-id', id('/a'), '--selector', 'unix:uid:2'),
      'ERR_ID_INVALID',
    ],
    [
      'a parent ID that is no URI',
      create('--spiffe-id', id('/w'), '--parent-id', 'agent-a', '--selector', 'unix:uid:2'),
      'ERR_ID_INVALID',
    ],
    [
      'an ID of another trust domain',
      create('--spiffe-id', 'spiffe://other.td/w', '--parent-id', id('/a'), '--selector', 'unix:uid:2'),
      'ERR_ENTRY_INVALID',
    ],
    ['a malformed unix selector', create(...valid, '--selector', 'unix:uid:abc'), 'ERR_SELECTOR_INVALID'],
    ['a selector without a type', create(...valid, '--selector', 'uid1000'), 'ERR_SELECTOR_INVALID'],
    ['an upper-case selector type', create(...valid, '--selector', 'UNIX:uid:1'), 'ERR_SELECTOR_INVALID'],
    ['a malformed X.509 TTL', create(...valid, '--x509-ttl', '1x'), 'ERR_TTL_INVALID'],
    ['a negative JWT TTL', create(...valid, '--jwt-ttl=-5m'), 'ERR_TTL_INVALID'],
    ['a sub-second TTL', create(...valid, '--x509-ttl', '1500ms'), 'ERR_TTL_INVALID'],
    [
      'a selector type nothing attests (uid:0 for unix:uid:0)',
      create(...valid, '--selector', 'uid:0'),
      'ERR_SELECTOR_INVALID',
    ],
    [
      'a selector of an attestor Tessera lacks',
      create(...valid, '--selector', 'k8s:ns:default'),
      'ERR_SELECTOR_INVALID',
    ],
    ['an X509-SVID TTL of one second', create(...valid, '--x509-ttl', '1'), 'ERR_TTL_INVALID'],
    ['an X509-SVID TTL under the 1m floor', create(...valid, '--x509-ttl', '59s'), 'ERR_TTL_INVALID'],
    ['a JWT-SVID TTL under the 30s floor', create(...valid, '--jwt-ttl', '29s'), 'ERR_TTL_INVALID'],
    ['a malformed DNS name', create(...valid, '--dns-name', 'not a host'), 'ERR_DNS_NAME_INVALID'],
    [
      'a malformed federated trust domain',
      create(...valid, '--federates-with', 'Other TD'),
      'ERR_TRUST_DOMAIN_INVALID',
    ],
    ['a malformed expiry', create(...valid, '--expires-at', 'tomorrow'), 'ERR_ENTRY_INVALID'],
    ['a missing selector', create('--spiffe-id', id('/w'), '--parent-id', id('/a')), 'ERR_REQUEST_INVALID'],
    ['an unknown option', create(...valid, '--colour', 'red'), 'ERR_REQUEST_INVALID'],
    [
      'an unknown match mode',
      ['entry', 'show', '--selector', 'unix:uid:1', '--match', 'most'],
      'ERR_SELECTOR_INVALID',
    ],
    ['a malformed filter ID', ['entry', 'show', '--parent-id', 'spiffe://'], 'ERR_ID_INVALID'],
    ['a malformed entry id', ['entry', 'delete', '--id', '../../etc'], 'ERR_REQUEST_INVALID'],
    [
      'an unknown entry id',
      ['entry', 'update', '--id', '00000000-0000-4000-8000-000000000000', '--hint', 'x'],
      'ERR_ENTRY_NOT_FOUND',
    ],
    [
      'a token alias of another trust domain',
      ['token', 'generate', '--spiffe-id', 'spiffe://other.td/n'],
      'ERR_ENTRY_INVALID',
    ],
    ['a malformed token TTL', ['token', 'generate', '--ttl', '0s'], 'ERR_TTL_INVALID'],
    ['a malformed agent ID', ['agent', 'show', '--spiffe-id', 'agent-1'], 'ERR_ID_INVALID'],
    [
      'a malformed federated trust domain to set',
      ['bundle', 'set', '--id', 'Bad TD', '--path', '/dev/null'],
      'ERR_TRUST_DOMAIN_INVALID',
    ],
    [
      'an unreadable bundle file',
      ['bundle', 'set', '--id', 'other.td', '--path', '/nonexistent'],
      'ERR_REQUEST_INVALID',
    ],
    ['an unknown output format', ['entry', 'show', '--output', 'yaml'], 'ERR_REQUEST_INVALID'],
  ])('refuses %s with one line and a stable code', async (_name, args, code) => {
    expect(failureCode(await tessera(...args))).toBe(code)
  })

  it('refuses a junk bundle file and the own trust domain', async () => {
    const junk = join(root, 'junk.json')
    await writeFile(junk, '{"keys": [{"use": "x509-svid", "x5c": ["!!"]}]}')
    expect(failureCode(await tessera('bundle', 'set', '--id', 'other.td', '--path', junk))).toBe(
      'ERR_BUNDLE_MALFORMED',
    )
    const own = join(root, 'own.pem')
    await writeFile(own, (await tessera('bundle', 'show')).stdout)
    expect(failureCode(await tessera('bundle', 'set', '--id', TD, '--path', own))).toBe(
      'ERR_TRUST_DOMAIN_INVALID',
    )
  })

  it('refuses an update to a TTL under the floor or to an unattested selector type', async () => {
    const { entries } = JSON.parse(baseline) as { entries: { id: string }[] }
    const goodId = entries[0]?.id ?? ''
    for (const change of [
      ['--x509-ttl', '5s'],
      ['--jwt-ttl', '1s'],
      ['--selector', 'uid:1'],
    ])
      expect(failureCode(await tessera('entry', 'update', '--id', goodId, ...change))).toBe(
        change[0] === '--selector' ? 'ERR_SELECTOR_INVALID' : 'ERR_TTL_INVALID',
      )
  })

  it('left nothing half-written', async () => {
    expect((await tessera('entry', 'show', '--output', 'json')).stdout).toBe(baseline)
    expect(jsonOf(await tessera('bundle', 'list', '--output', 'json'))).toEqual({ bundles: [] })
  })
})

describe('bad input on the gRPC API', () => {
  const entry = (overrides: Partial<Entry>): Entry => ({
    spiffe_id: id('/g'),
    parent_id: id('/a'),
    selectors: [{ type: 'unix', value: 'uid:3' }],
    ...overrides,
  })

  it.each<[string, Entry, string]>([
    ['a negative TTL', entry({ x509_svid_ttl: -1 }), 'ERR_TTL_INVALID'],
    ['a one-second X509-SVID TTL', entry({ x509_svid_ttl: 1 }), 'ERR_TTL_INVALID'],
    ['a JWT-SVID TTL under the floor', entry({ jwt_svid_ttl: 10 }), 'ERR_TTL_INVALID'],
    [
      'a selector type nothing attests',
      entry({ selectors: [{ type: 'uid', value: '0' }] }),
      'ERR_SELECTOR_INVALID',
    ],
    ['a negative expiry', entry({ expires_at: -1 }), 'ERR_ENTRY_INVALID'],
    ['an empty selector value', entry({ selectors: [{ type: 'unix', value: '' }] }), 'ERR_SELECTOR_INVALID'],
    [
      'a NUL in a selector',
      entry({ selectors: [{ type: 'k8s', value: 'ns:\u0000' }] }),
      'ERR_SELECTOR_INVALID',
    ],
    ['an empty SPIFFE ID', entry({ spiffe_id: '' }), 'ERR_ID_INVALID'],
    ['a control character in the hint', entry({ hint: 'a\nb' }), 'ERR_ENTRY_INVALID'],
  ])('refuses %s with INVALID_ARGUMENT', async (_name, bad, errorCode) => {
    const call = callRaw((o, r) => admin.entries.CreateEntry({ entry: bad }, o, r))
    expect(await failureOf(call)).toEqual({ code: status.INVALID_ARGUMENT, errorCode })
  })

  it.each<[string, Record<string, unknown>, string]>([
    ['a junk page token', { page_token: 'not a token!' }, 'ERR_PAGE_TOKEN_INVALID'],
    [
      'a page token of another listing',
      { page_token: Buffer.from('a1:spiffe://x/y').toString('base64url') },
      'ERR_PAGE_TOKEN_INVALID',
    ],
    ['a negative page size', { page_size: -1 }, 'ERR_REQUEST_INVALID'],
    [
      'an unknown match mode',
      { filter: { by_selectors: [{ type: 'unix', value: 'uid:1' }], selector_match: 'all' } },
      'ERR_SELECTOR_INVALID',
    ],
  ])('refuses a listing with %s', async (_name, request, errorCode) => {
    const call = callRaw((o, r) => admin.entries.ListEntries(request, o, r))
    expect(await failureOf(call)).toEqual({ code: status.INVALID_ARGUMENT, errorCode })
  })

  it('refuses a junk agent page token', async () => {
    const call = callRaw((o, r) => admin.agents.ListAgents({ page_token: 'e30' }, o, r))
    expect(await failureOf(call)).toEqual({
      code: status.INVALID_ARGUMENT,
      errorCode: 'ERR_PAGE_TOKEN_INVALID',
    })
  })

  it('reports each bad item of a batch alone and stores the good ones', async () => {
    const entries = [
      entry({ spiffe_id: id('/batch/ok') }),
      entry({ spiffe_id: 'nope' }),
      entry({ jwt_svid_ttl: -5 }),
    ]
    const response = await callRaw<{ results: { status: { code: number; error_code: string } | null }[] }>(
      (o, r) => admin.entries.BatchCreateEntry({ entries }, o, r),
    )
    expect(response.results.map((r) => [r.status?.code, r.status?.error_code])).toEqual([
      [status.OK, ''],
      [status.INVALID_ARGUMENT, 'ERR_ID_INVALID'],
      [status.INVALID_ARGUMENT, 'ERR_TTL_INVALID'],
    ])
    const { entries: stored } = jsonOf<{ entries: unknown[] }>(
      await tessera('entry', 'show', '--output', 'json'),
    )
    expect(stored).toHaveLength(2)
    const del = (response.results[0] as { entry?: { id: string } }).entry?.id ?? ''
    expect((await tessera('entry', 'delete', '--id', del)).code).toBe(0)
  })

  it('refuses an oversized request with RESOURCE_EXHAUSTED, and keeps serving', async () => {
    const call = callRaw((o, r) =>
      admin.entries.CreateEntry({ entry: entry({ hint: 'x'.repeat(2 << 20) }) }, o, r),
    )
    expect((await failureOf(call)).code).toBe(status.RESOURCE_EXHAUSTED)
    const big = join(root, 'big.pem')
    await writeFile(big, 'A'.repeat(3 << 20))
    expect(failureCode(await tessera('bundle', 'set', '--id', 'other.td', '--path', big))).toBe(
      'ERR_REQUEST_TOO_LARGE',
    )
    expect((await tessera('entry', 'show', '--output', 'json')).stdout).toBe(baseline)
  })

  it.each<[string, Buffer]>([
    ['random bytes', randomBytes(4096)],
    ['an HTTP/1 request', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
    [
      'the HTTP/2 preface then junk frames',
      Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), randomBytes(512)]),
    ],
  ])('closes a connection that sends %s, and keeps serving', async (_name, junk) => {
    const socket = connect(server?.socket ?? '')
    socket.on('error', () => undefined)
    socket.resume() // read what the server answers (a GOAWAY), so its end can be seen
    await once(socket, 'connect')
    socket.write(junk)
    const closed = once(socket, 'close')
    const timeout = new Promise((_, reject) =>
      setTimeout(() => reject(new Error('not closed within 5 s')), 5000),
    )
    await Promise.race([closed, timeout])
    expect((await tessera('entry', 'show', '--output', 'json')).stdout).toBe(baseline)
  })
})

describe('peer uid check', () => {
  asRoot(
    'drops and audits a uid that is not an admin at accept, even when it can reach the socket',
    async () => {
      const socket = server?.socket ?? ''
      await chmod(root, 0o755)
      await chmod(join(root, 'server'), 0o755)
      await chmod(socket, 0o666)
      // Closed before any byte is read (DESIGN §9): the CLI cannot get a gRPC answer, only the close.
      const result = await runCli(['entry', 'show'], { socket, runAs: NOBODY })
      expect(result.code, result.stdout).not.toBe(0)
      expect(result.stderr).toMatch(
        /^error ERR_PEER_UNAUTHORIZED: .*not one of its admins.*--admin-uid 65534/,
      )
      const token = await runCli(['token', 'generate'], { socket, runAs: NOBODY })
      expect(token.code, token.stdout).not.toBe(0)
      const audit = (await readFile(join(root, 'server', 'audit.log'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
      const denied = audit.filter((r) => r.event === 'call.denied' && r.caller?.uid === NOBODY.uid)
      // The first drop is written whole; the ones right after it are counted into a summary line.
      expect(denied[0]).toMatchObject({
        resource: 'connect',
        code: 'ERR_PEER_UNAUTHORIZED',
        outcome: 'denied',
      })
      expect(audit.some((r) => r.event === 'token.created' && r.caller?.uid === NOBODY.uid)).toBe(false)
      await chmod(join(root, 'server'), 0o700)
    },
  )

  asRoot('lets in a uid given with --admin-uid, through a socket it can reach', async () => {
    await chmod(root, 0o755)
    const dataDir = join(root, 'shared-server')
    await mkdir(dataDir, { mode: 0o700 })
    const socket = join(root, 'shared', 'admin.sock')
    shared = await startServerProcess({ dataDir, socket, args: ['--admin-uid', String(NOBODY.uid)] })
    const result = await runCli(['entry', 'create', ...valid, '--output', 'json'], { socket, runAs: NOBODY })
    expect(result.code, result.stderr).toBe(0)
    const audit = (await readFile(join(dataDir, 'audit.log'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(audit.filter((r) => r.event === 'entry.changed').map((r) => r.caller)).toEqual([
      expect.objectContaining({ kind: 'admin', uid: NOBODY.uid }),
    ])
  })
})
