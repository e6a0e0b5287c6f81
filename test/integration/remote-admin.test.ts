import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type ChannelCredentials, credentials, type ServiceError, status } from '@grpc/grpc-js'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { ListEntriesResponse__Output } from '../../common/gen/tessera/admin/v1/ListEntriesResponse.js'
import { adminApi } from '../../common/grpc/protos.js'
import { errorCodeOf } from '../../lib/grpc/status.js'
import { type CliResult, isRoot, jsonOf } from '../helpers/processes.js'
import { readJsonLines } from '../helpers/server-process.js'
import { openForOtherUsers, type Stack, startStack } from '../helpers/stack.js'

const NOBODY = { uid: 65534, gid: 65534 }
const myUid = process.getuid?.() ?? 0
let stack: Stack
let address: string
const id = (path: string) => `spiffe://${stack.trustDomain}${path}`
const audit = () => readJsonLines(join(stack.dir, 'server', 'audit.log'))

/** `tessera <args> --server-address 127.0.0.1:<port>`: the admin API over mTLS, as this workload. */
function remote(args: ReadonlyArray<string>, runAs?: { uid: number; gid: number }): Promise<CliResult> {
  return stack.cli([...args, '--server-address', address], runAs === undefined ? {} : { runAs })
}

function expectRefused(result: CliResult, code = 'ERR_PEER_UNAUTHORIZED'): void {
  expect([result.code, result.stderr]).toEqual([1, expect.stringMatching(new RegExp(`^error ${code}: `))])
}

/** ListEntries over mTLS with `creds` (any server accepted: the test's own client); the error, or null. */
async function listWith(creds: ChannelCredentials): Promise<ServiceError | null> {
  const options = { 'grpc.ssl_target_name_override': stack.trustDomain }
  const client = new (adminApi().tessera.admin.v1.Entries)(address, creds, options)
  const err = await new Promise<ServiceError | null>((resolve) =>
    client.ListEntries({}, (e: ServiceError | null, _r?: ListEntriesResponse__Output) => resolve(e)),
  )
  client.close()
  return err
}

const anyServer = { checkServerIdentity: () => undefined }

beforeAll(async () => {
  stack = await startStack()
  const port = /"agentApi":"[^"]*:(\d+)"/.exec(stack.server().output())?.[1]
  address = `127.0.0.1:${port}`
  await openForOtherUsers(stack)
})
beforeEach((ctx) => ctx.onTestFailed(() => console.error(stack.output())))
afterAll(async () => stack?.stop())

describe('remote admin over mTLS on the server TCP port', () => {
  it('lets an admin entry’s workload manage entries, audited by its SPIFFE ID; clearing the flag refuses it at once', async () => {
    const adminId = id('/ops/admin-cli')
    const adminEntry = jsonOf<{ id: string }>(
      await stack.cli([
        'entry',
        'create',
        '--spiffe-id',
        adminId,
        '--parent-id',
        stack.agentAlias,
        '--selector',
        `unix:uid:${myUid}`,
        '--admin',
        '--output',
        'json',
      ]),
    ).id
    // The agent gets the new entry pushed; the CLI's first fetch may precede it.
    let created: CliResult | undefined
    for (let i = 0; i < 100; i++) {
      created = await remote([
        'entry',
        'create',
        '--spiffe-id',
        id('/remote/web'),
        '--parent-id',
        stack.agentAlias,
        '--selector',
        'unix:uid:4242',
        '--output',
        'json',
      ])
      if (created.code === 0 || !/ERR_WORKLOAD|no identity|PERMISSION/i.test(created.stderr)) break
      await new Promise((r) => setTimeout(r, 100))
    }
    const web = jsonOf<{ id: string; spiffe_id: string }>(created as CliResult)
    expect(web.spiffe_id).toBe(id('/remote/web'))
    const shown = jsonOf<{ entries: { id: string }[] }>(await remote(['entry', 'show', '--output', 'json']))
    expect(shown.entries.map((e) => e.id)).toContain(web.id)
    expect((await remote(['entry', 'delete', '--id', web.id])).code).toBe(0)

    const records = await audit()
    const mine = records.filter((r) => (r['caller'] as { spiffeId?: string })?.spiffeId === adminId)
    expect(mine).toContainEqual(
      expect.objectContaining({ event: 'call.allowed', via: 'mtls', outcome: 'allowed' }),
    )
    expect(mine).toContainEqual(
      expect.objectContaining({ event: 'entry.changed', action: 'created', resource: id('/remote/web') }),
    )
    expect(mine).toContainEqual(expect.objectContaining({ event: 'entry.changed', action: 'deleted' }))

    // The flag cleared over the admin socket: the very next remote call is refused (same SVID).
    expect((await stack.cli(['entry', 'update', '--id', adminEntry, '--no-admin'])).code).toBe(0)
    expectRefused(await remote(['entry', 'show']))
    const denied = (await audit()).filter((r) => r['event'] === 'call.denied')
    expect(denied).toContainEqual(
      expect.objectContaining({
        code: 'ERR_PEER_UNAUTHORIZED',
        caller: expect.objectContaining({ spiffeId: adminId }),
      }),
    )

    // Flag set again; the workload keeps its SVID files. Deleting the entry refuses the very next
    // call made with that (still unexpired) SVID.
    expect((await stack.cli(['entry', 'update', '--id', adminEntry, '--admin'])).code).toBe(0)
    const files = join(stack.dir, 'admin-svid')
    expect((await stack.cli(['api', 'fetch', 'x509', '--write', files])).code).toBe(0)
    const [cert, key, bundle] = await Promise.all(
      ['svid.pem', 'svid.key', 'bundle.pem'].map((f) => readFile(join(files, f))),
    )
    const asAdmin = credentials.createSsl(bundle, key, cert, anyServer)
    expect(await listWith(asAdmin)).toBeNull()
    await stack.deleteEntry(adminEntry)
    const err = await listWith(asAdmin)
    expect([err?.code, errorCodeOf(err)]).toEqual([status.PERMISSION_DENIED, 'ERR_PEER_UNAUTHORIZED'])
  })

  it.skipIf(!isRoot)(
    'refuses a workload whose entry is not admin, and audits it (needs root for uid 65534)',
    async () => {
      const nobodyId = id('/nobody/plain')
      await stack.registerEntry({ spiffeId: nobodyId, selectors: ['unix:uid:65534'] })
      let result: CliResult | undefined
      for (let i = 0; i < 100; i++) {
        result = await remote(['entry', 'show'], NOBODY)
        if (/ERR_PEER_UNAUTHORIZED/.test(result.stderr)) break
        await new Promise((r) => setTimeout(r, 100))
      }
      expectRefused(result as CliResult)
      expect(await audit()).toContainEqual(
        expect.objectContaining({
          event: 'call.denied',
          code: 'ERR_PEER_UNAUTHORIZED',
          caller: expect.objectContaining({ kind: 'svid', spiffeId: nobodyId }),
        }),
      )
    },
  )

  it('refuses the agent’s own SVID, and a caller with no certificate', async () => {
    const state = JSON.parse(await readFile(join(stack.dir, 'agent', 'agent-svid.json'), 'utf8')) as {
      spiffeId: string
      chain: string[]
      key: string
    }
    const pem = (label: string, b64: string) => `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`
    const bundle = await readFile(join(stack.dir, 'bundle.pem'))
    const chain = state.chain.map((c) => pem('CERTIFICATE', c)).join('')
    const asAgent = credentials.createSsl(
      bundle,
      Buffer.from(pem('PRIVATE KEY', state.key)),
      Buffer.from(chain),
      anyServer,
    )
    const anonymous = credentials.createSsl(bundle, null, null, anyServer)
    for (const creds of [asAgent, anonymous]) {
      const err = await listWith(creds)
      expect([err?.code, errorCodeOf(err)]).toEqual([status.PERMISSION_DENIED, 'ERR_PEER_UNAUTHORIZED'])
    }
    expect(await audit()).toContainEqual(
      expect.objectContaining({
        event: 'call.denied',
        code: 'ERR_PEER_UNAUTHORIZED',
        caller: expect.objectContaining({ spiffeId: state.spiffeId }),
      }),
    )
  })
})
