import { X509Certificate } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { Entry } from '../../common/gen/tessera/types/v1/Entry.js'
import { decodePem } from '../../lib/core/x509/pem.js'
import { type AdminClients, callRaw, connectAdmin } from '../helpers/admin-grpc.js'
import {
  type CliResult,
  dumpOutput,
  jsonOf,
  killAllChildren,
  makeTempDir,
  removeDir,
  requireBuild,
  runCli,
  type ServerProcess,
  startServerProcess,
} from '../helpers/processes.js'
import { TestCa } from '../helpers/test-ca.js'

interface EntryJson {
  id: string
  spiffe_id: string
  parent_id: string
  selectors: { type: string; value: string }[]
  x509_svid_ttl: number
  jwt_svid_ttl: number
  dns_names: string[]
  hint: string
  admin: boolean
  federates_with: string[]
  expires_at: number
  revision_number: number
}

const TD = 'tessera.local'
const id = (path: string) => `spiffe://${TD}${path}`
let root: string
let server: ServerProcess | undefined
let admin: AdminClients

beforeAll(async () => {
  requireBuild()
  root = await makeTempDir('tessera-admin-cli-')
  // The server's default data dir, so the CLI run from `root` finds the socket with no flag at all.
  const dataDir = join(root, '.tessera', 'server')
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  server = await startServerProcess({ dataDir })
  admin = connectAdmin(server.socket)
})
beforeEach((ctx) => {
  ctx.onTestFailed(() => dumpOutput([server]))
})
afterAll(async () => {
  admin?.close()
  await server?.stop()
  await killAllChildren()
  await removeDir(root)
})

/** Runs the CLI against the test server. */
function tessera(...args: string[]): Promise<CliResult> {
  return runCli(args, { socket: server?.socket ?? '' })
}

async function entryIds(...filters: string[]): Promise<string[]> {
  const { entries } = jsonOf<{ entries: EntryJson[] }>(
    await tessera('entry', 'show', '--output', 'json', ...filters),
  )
  return entries.map((e) => e.id).sort()
}

async function createEntry(...flags: string[]): Promise<EntryJson> {
  return jsonOf<EntryJson>(await tessera('entry', 'create', '--output', 'json', ...flags))
}

describe('tessera entry', () => {
  it('creates an entry with every flag, and shows it in both formats', async () => {
    const created = await createEntry(
      ...['--spiffe-id', id('/web'), '--parent-id', id('/agent/a')],
      ...['--selector', 'unix:uid:1000', '--selector', 'unix:gid:50'],
      ...['--x509-ttl', '1h', '--jwt-ttl', '5m', '--dns-name', 'web.local', '--dns-name', 'www.web.local'],
      ...[
        '--hint',
        'frontend',
        '--admin',
        '--expires-at',
        '2030-01-01T00:00:00Z',
        '--federates-with',
        'other.td',
      ],
    )
    expect(created).toMatchObject({
      spiffe_id: id('/web'),
      parent_id: id('/agent/a'),
      selectors: [
        { type: 'unix', value: 'gid:50' },
        { type: 'unix', value: 'uid:1000' },
      ],
      x509_svid_ttl: 3600,
      jwt_svid_ttl: 300,
      dns_names: ['web.local', 'www.web.local'],
      hint: 'frontend',
      admin: true,
      federates_with: ['other.td'],
      expires_at: 1_893_456_000,
      revision_number: 0,
    })
    const human = await tessera('entry', 'show', '--id', created.id)
    expect(human.code, human.stderr).toBe(0)
    expect(human.stdout).toMatch(new RegExp(`^Found 1 entry\\n\\nEntry ID +: ${created.id}\\n`))
    expect(human.stdout).toMatch(/X509-SVID TTL +: 1h\n/)
    expect(human.stdout).toMatch(/Selector +: unix:uid:1000\n/)
    expect(human.stdout).toMatch(/Expires at +: 2030-01-01T00:00:00Z\n/)
  })

  it('filters by SPIFFE ID, parent, selectors (every match mode), federation and hint', async () => {
    const a = await createEntry(
      '--spiffe-id',
      id('/f/a'),
      '--parent-id',
      id('/p1'),
      '--selector',
      'unix:uid:1',
    )
    const b = await createEntry(
      ...['--spiffe-id', id('/f/b'), '--parent-id', id('/p1'), '--selector', 'unix:uid:1'],
      ...['--selector', 'unix:gid:2', '--hint', 'bee', '--federates-with', 'spiffe://fed.td'],
    )
    const c = await createEntry(
      '--spiffe-id',
      id('/f/c'),
      '--parent-id',
      id('/p2'),
      '--selector',
      'unix:gid:2',
    )
    const sorted = (...entries: EntryJson[]) => entries.map((e) => e.id).sort()
    expect(await entryIds('--spiffe-id', id('/f/b'))).toEqual(sorted(b))
    expect(await entryIds('--parent-id', id('/p1'))).toEqual(sorted(a, b))
    const both = ['--selector', 'unix:uid:1', '--selector', 'unix:gid:2']
    expect(await entryIds(...both)).toEqual(sorted(b))
    expect(await entryIds(...both, '--match', 'exact')).toEqual(sorted(b))
    expect(await entryIds(...both, '--match', 'subset')).toEqual(sorted(a, b, c))
    expect(await entryIds('--selector', 'unix:uid:1', '--match', 'superset')).toEqual(sorted(a, b))
    expect(await entryIds('--selector', 'unix:gid:2', '--match', 'any')).toEqual(sorted(b, c))
    expect(await entryIds('--federates-with', 'fed.td')).toEqual(sorted(b))
    expect(await entryIds('--hint', 'bee')).toEqual(sorted(b))
    expect(await entryIds('--parent-id', id('/p2'), '--selector', 'unix:gid:2')).toEqual(sorted(c))
  })

  it('pages through every entry', async () => {
    const before = (await entryIds()).length
    const entries: Entry[] = Array.from({ length: 450 }, (_, i) => ({
      spiffe_id: id(`/bulk/${i}`),
      parent_id: id('/bulk-agent'),
      selectors: [{ type: 'unix', value: `uid:${10_000 + i}` }],
    }))
    const response = await callRaw<{ results: { status: { code: number } | null }[] }>((o, r) =>
      admin.entries.BatchCreateEntry({ entries }, o, r),
    )
    expect(response.results.every((r) => r.status?.code === 0)).toBe(true)
    expect(await entryIds()).toHaveLength(before + 450)
    expect(await entryIds('--parent-id', id('/bulk-agent'))).toHaveLength(450)
    const human = await tessera('entry', 'show', '--parent-id', id('/bulk-agent'))
    expect(human.stdout.split('\n')[0]).toBe('Found 450 entries')
  })

  it('updates only the fields given, with the revision it read', async () => {
    const created = await createEntry(
      ...['--spiffe-id', id('/u'), '--parent-id', id('/agent/u'), '--selector', 'unix:uid:7'],
      ...['--hint', 'old', '--dns-name', 'u.local', '--x509-ttl', '2h'],
    )
    const updated = jsonOf<EntryJson>(
      await tessera(
        'entry',
        'update',
        '--id',
        created.id,
        '--hint',
        'new',
        '--x509-ttl',
        '0',
        '--output',
        'json',
      ),
    )
    expect(updated).toMatchObject({ ...created, hint: 'new', x509_svid_ttl: 0, revision_number: 1 })
    const again = jsonOf<EntryJson>(
      await tessera(
        'entry',
        'update',
        '--id',
        created.id,
        '--selector',
        'unix:uid:8',
        '--admin',
        '--output',
        'json',
      ),
    )
    expect(again).toMatchObject({ hint: 'new', admin: true, selectors: [{ type: 'unix', value: 'uid:8' }] })
    expect(again.revision_number).toBe(2)
    const human = await tessera('entry', 'update', '--id', created.id, '--no-admin')
    expect([human.code, human.stdout]).toEqual([
      0,
      expect.stringMatching(/^Entry ID +: .*\n[\s\S]*Revision +: 3\n/),
    ])
  })

  it('deletes an entry', async () => {
    const created = await createEntry(
      '--spiffe-id',
      id('/d'),
      '--parent-id',
      id('/agent/d'),
      '--selector',
      'unix:uid:9',
    )
    const deleted = await tessera('entry', 'delete', '--id', created.id)
    expect([deleted.code, deleted.stdout]).toEqual([0, `Deleted entry ${created.id}\n`])
    const gone = await tessera('entry', 'show', '--id', created.id)
    expect([gone.code, gone.stderr]).toEqual([
      1,
      expect.stringMatching(/^error ERR_ENTRY_NOT_FOUND: [^\n]+\n$/),
    ])
  })

  it('finds the socket through TESSERA_ADMIN_SOCKET, and at the default path from the cwd', async () => {
    const viaEnv = await runCli(['entry', 'show'], { env: { TESSERA_ADMIN_SOCKET: server?.socket ?? '' } })
    expect(viaEnv.code, viaEnv.stderr).toBe(0)
    const viaDefault = await runCli(['entry', 'show'], { cwd: root })
    expect(viaDefault.code, viaDefault.stderr).toBe(0)
    expect(viaDefault.stdout).toBe(viaEnv.stdout)
    const nowhere = await runCli(['entry', 'show'], { cwd: '/' })
    expect([nowhere.code, nowhere.stderr]).toEqual([
      1,
      expect.stringMatching(/^error ERR_ADMIN_API_UNAVAILABLE: no admin socket at [^\n]+\n$/),
    ])
  })
})

describe('tessera token generate', () => {
  it('generates a token without an alias', async () => {
    const askedAt = Math.floor(Date.now() / 1000)
    const token = jsonOf<{ token: string; expires_at: number; agent_spiffe_id: string }>(
      await tessera('token', 'generate', '--ttl', '10m', '--output', 'json'),
    )
    expect(token.token).toMatch(/^[0-9a-f-]{36}$/)
    expect(token.agent_spiffe_id).toMatch(
      new RegExp(`^spiffe://${TD}/tessera/agent/join_token/[0-9a-f]{32}$`),
    )
    // 600 s after it was made, which is between the command's start and its end (a bracket, not a
    // bound on how long the command took).
    expect(token.expires_at).toBeGreaterThanOrEqual(askedAt + 600)
    expect(token.expires_at).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 600)
    const human = await tessera('token', 'generate')
    expect(human.stdout).toMatch(
      /^Token +: [0-9a-f-]{36}\nAgent SPIFFE ID +: spiffe:\/\/\S+\nExpires at +: \S+\n$/,
    )
  })

  it('creates the alias entry for the agent that will use the token', async () => {
    const token = jsonOf<{ agent_spiffe_id: string }>(
      await tessera('token', 'generate', '--spiffe-id', id('/node/alias'), '--output', 'json'),
    )
    const { entries } = jsonOf<{ entries: EntryJson[] }>(
      await tessera('entry', 'show', '--spiffe-id', id('/node/alias'), '--output', 'json'),
    )
    expect(entries).toHaveLength(1)
    expect(entries[0]).toMatchObject({
      parent_id: token.agent_spiffe_id,
      selectors: [{ type: 'spiffe_id', value: token.agent_spiffe_id }],
    })
  })
})

describe('tessera agent', () => {
  it('lists no agents on a fresh server and reports unknown ones', async () => {
    expect(jsonOf(await tessera('agent', 'list', '--output', 'json'))).toEqual({ agents: [] })
    expect((await tessera('agent', 'list')).stdout).toBe('Found 0 attested agents\n')
    const agentId = id('/tessera/agent/join_token/0123')
    for (const verb of ['show', 'evict', 'ban']) {
      const result = await tessera('agent', verb, '--spiffe-id', agentId)
      expect([result.code, result.stderr]).toEqual([
        1,
        expect.stringMatching(/^error ERR_AGENT_NOT_FOUND: [^\n]+\n$/),
      ])
    }
  })
})

describe('tessera bundle', () => {
  it('shows the own bundle as PEM and as a SPIFFE document holding the same certificates', async () => {
    const pem = await tessera('bundle', 'show')
    expect(pem.code, pem.stderr).toBe(0)
    const pemDers = decodePem(pem.stdout, 'CERTIFICATE')
    expect(pemDers.length).toBeGreaterThan(0)
    for (const der of pemDers) expect(new X509Certificate(der).ca).toBe(true)
    const spiffe = await tessera('bundle', 'show', '--format', 'spiffe')
    const document = JSON.parse(spiffe.stdout) as { keys: { use: string; x5c?: string[]; kid?: string }[] }
    const x5c = document.keys.filter((k) => k.use === 'x509-svid').map((k) => k.x5c?.[0])
    expect(x5c).toEqual(pemDers.map((d) => d.toString('base64')))
    expect(document.keys.some((k) => k.use === 'jwt-svid' && typeof k.kid === 'string')).toBe(true)
    const view = jsonOf<{ trust_domain: string; pem: string }>(
      await tessera('bundle', 'show', '--output', 'json'),
    )
    expect(view).toMatchObject({ trust_domain: TD, pem: pem.stdout })
  })

  it('sets, lists and deletes a federated bundle from a file', async () => {
    const ca = await TestCa.create('other.td')
    const pemFile = join(root, 'other.pem')
    await writeFile(pemFile, ca.bundlePem)
    const set = await tessera(
      'bundle',
      'set',
      '--id',
      'spiffe://other.td',
      '--path',
      pemFile,
      '--format',
      'pem',
    )
    expect([set.code, set.stdout]).toEqual([0, 'Bundle set for trust domain other.td (sequence 1)\n'])
    const listed = jsonOf<{ bundles: { trust_domain: string; pem: string; sequence_number: number }[] }>(
      await tessera('bundle', 'list', '--output', 'json'),
    )
    expect(listed.bundles).toEqual([{ trust_domain: 'other.td', sequence_number: 1, pem: ca.bundlePem }])
    const spiffe = jsonOf<{ bundles: { spiffe_bundle: string }[] }>(
      await tessera('bundle', 'list', '--format', 'spiffe', '--output', 'json'),
    )
    const docFile = join(root, 'other.json')
    await writeFile(docFile, spiffe.bundles[0]?.spiffe_bundle ?? '')
    const again = await tessera('bundle', 'set', '--id', 'other.td', '--path', docFile)
    // The document carries its own spiffe_sequence (1), which the server keeps.
    expect([again.code, again.stdout]).toEqual([0, 'Bundle set for trust domain other.td (sequence 1)\n'])
    expect((await tessera('bundle', 'list')).stdout).toMatch(
      /^Found 1 federated bundle\n\n\*+\n\* other\.td\n\*+\n-----BEGIN/,
    )
    expect((await tessera('bundle', 'delete', '--id', 'spiffe://other.td')).code).toBe(0)
    expect(jsonOf(await tessera('bundle', 'list', '--output', 'json'))).toEqual({ bundles: [] })
    const missing = await tessera('bundle', 'delete', '--id', 'other.td')
    expect([missing.code, missing.stderr]).toEqual([
      1,
      expect.stringMatching(/^error ERR_BUNDLE_NOT_FOUND: [^\n]+\n$/),
    ])
  })
})
