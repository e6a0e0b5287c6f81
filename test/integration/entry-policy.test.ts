import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { status } from '@grpc/grpc-js'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { BatchCreateEntryResponse__Output } from '../../common/gen/tessera/admin/v1/BatchCreateEntryResponse.js'
import type { Entry__Output } from '../../common/gen/tessera/types/v1/Entry.js'
import { type AdminClients, callRaw, connectAdmin, failureOf } from '../helpers/admin-grpc.js'
import { jsonOf } from '../helpers/processes.js'
import { readJsonLines } from '../helpers/server-process.js'
import { probe, type Stack, startStack } from '../helpers/stack.js'

const myUid = process.getuid?.() ?? 0
let stack: Stack
let admin: AdminClients
const id = (path: string) => `spiffe://${stack.trustDomain}${path}`
const audit = () => readJsonLines(join(stack.dir, 'server', 'audit.log'))
const sha256Of = async (path: string) =>
  createHash('sha256')
    .update(await readFile(path))
    .digest('hex')

function entry(spiffeId: string, selectors: string[]): Entry__Output {
  return {
    spiffe_id: spiffeId,
    parent_id: stack.agentAlias,
    selectors: selectors.map((s) => ({ type: 'unix', value: s.replace(/^unix:/, '') })),
  } as Entry__Output
}

function create(spiffeId: string, selectors: string[]) {
  const args = [
    'entry',
    'create',
    '--spiffe-id',
    spiffeId,
    '--parent-id',
    stack.agentAlias,
    '--output',
    'json',
  ]
  for (const s of selectors) args.push('--selector', s)
  return stack.cli(args)
}

beforeAll(async () => {
  stack = await startStack()
  admin = connectAdmin(stack.adminSocket)
})
beforeEach((ctx) => ctx.onTestFailed(() => console.error(stack.output())))
afterAll(async () => {
  admin?.close()
  await stack?.stop()
})

describe('reserved IDs: spiffe://<td>/tessera/… belongs to the server and agents', () => {
  it('refuses an entry for the server’s ID through the CLI and every write of the API, audited; the workload never gets it', async () => {
    const serverId = id('/tessera/server')
    const attacker = [`unix:uid:${myUid}`]
    const cli = await create(serverId, attacker)
    expect([cli.code, cli.stderr]).toEqual([1, expect.stringMatching(/^error ERR_ENTRY_ID_RESERVED: /)])

    const refused = { code: status.INVALID_ARGUMENT, errorCode: 'ERR_ENTRY_ID_RESERVED' }
    for (const reserved of [serverId, id('/tessera/agent/join_token/x'), id('/tessera')]) {
      expect(
        await failureOf(
          callRaw((o, r) => admin.entries.CreateEntry({ entry: entry(reserved, attacker) }, o, r)),
        ),
      ).toEqual(refused)
    }
    const batch = await callRaw<BatchCreateEntryResponse__Output>((o, r) =>
      admin.entries.BatchCreateEntry(
        { entries: [entry(serverId, attacker), entry(id('/ok'), ['unix:uid:4242'])] },
        o,
        r,
      ),
    )
    expect(batch.results.map((x) => x.status?.code)).toEqual([status.INVALID_ARGUMENT, status.OK])
    const plain = jsonOf<Entry__Output>(await create(id('/plain'), ['unix:uid:4343']))
    const moved = { ...entry(serverId, attacker), id: plain.id, revision_number: plain.revision_number }
    expect(await failureOf(callRaw((o, r) => admin.entries.UpdateEntry({ entry: moved }, o, r)))).toEqual(
      refused,
    )

    // A join token's alias entry may name an agent (`…/tessera/agent/…`), never the server.
    const token = await stack.cli(['token', 'generate', '--spiffe-id', serverId])
    expect([token.code, token.stderr]).toEqual([1, expect.stringMatching(/^error ERR_ENTRY_ID_RESERVED: /)])

    const denied = (await audit()).filter((r) => r['event'] === 'entry.changed' && r['resource'] === serverId)
    expect(denied.map((r) => [r['action'], r['code']])).toEqual([
      ['created', 'ERR_ENTRY_ID_RESERVED'],
      ['created', 'ERR_ENTRY_ID_RESERVED'],
      ['created', 'ERR_ENTRY_ID_RESERVED'],
      ['updated', 'ERR_ENTRY_ID_RESERVED'],
      ['created', 'ERR_ENTRY_ID_RESERVED'],
    ])
    // The attack this closes: a workload holding the server's SVID could present it to a new agent
    // bootstrapping with the trust bundle and take its join token. It matches nothing here.
    const got = await probe(stack.socketPath, ['x509'])
    expect(got.ids ?? []).not.toContain(serverId)
    expect(got.ok).toBe(false)
  })
})

describe('entries whose only binary pin is an interpreter', () => {
  it('are created with a warning to the admin (CLI stderr, trailers, batch items) and in the audit line', async () => {
    const byPath = await create(id('/py-tool'), [`unix:uid:${myUid}`, 'unix:path:/usr/bin/python3'])
    expect(byPath.code, byPath.stderr).toBe(0)
    expect(byPath.stderr).toMatch(/^warning: unix:path:\/usr\/bin\/python3 is an interpreter: any script/)

    const nodeHash = await sha256Of(process.execPath)
    const byHash = await create(id('/node-tool'), [`unix:uid:${myUid}`, `unix:sha256:${nodeHash}`])
    expect(byHash.code, byHash.stderr).toBe(0)
    expect(byHash.stderr).toMatch(/^warning: unix:sha256 is the hash of the interpreter \//)

    const sleepHash = await sha256Of('/usr/bin/sleep')
    const compiled = await create(id('/sleeper'), [`unix:uid:${myUid}`, `unix:sha256:${sleepHash}`])
    expect([compiled.code, compiled.stderr]).toEqual([0, ''])

    const updated = await stack.cli([
      'entry',
      'update',
      '--id',
      jsonOf<{ id: string }>(compiled).id,
      '--selector',
      `unix:uid:${myUid}`,
      '--selector',
      'unix:path:/bin/bash',
    ])
    expect([updated.code, updated.stderr]).toEqual([0, expect.stringMatching(/^warning: .*interpreter/)])

    const batch = await callRaw<BatchCreateEntryResponse__Output>((o, r) =>
      admin.entries.BatchCreateEntry(
        { entries: [entry(id('/sh-tool'), ['unix:uid:5', 'unix:path:/bin/sh'])] },
        o,
        r,
      ),
    )
    expect(batch.results[0]?.warnings).toEqual([expect.stringContaining('interpreter')])

    const records = await audit()
    const warned = (subject: string) =>
      records.find((r) => r['event'] === 'entry.changed' && r['resource'] === subject)?.['warnings']
    for (const path of ['/py-tool', '/node-tool', '/sh-tool']) expect(warned(id(path))).toHaveLength(1)
    expect(warned(id('/sleeper'))).toBeUndefined()
  })
})
