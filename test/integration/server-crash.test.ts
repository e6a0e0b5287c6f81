import { join } from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { Entry__Output } from '../../common/gen/tessera/types/v1/Entry.js'
import { type AdminClients, callRaw, connectAdmin } from '../helpers/admin-grpc.js'
import {
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

const TD = 'tessera.local'
/** Creates acknowledged before the server is killed. */
const ACKS_BEFORE_KILL = 150
/** Creates in flight at once during the burst. */
const CONCURRENCY = 8

interface BundleKeys {
  readonly x5c: string[]
  readonly kids: string[]
}

let root: string
let dataDir: string
const servers: ServerProcess[] = []

beforeAll(async () => {
  requireBuild()
  root = await makeTempDir('tessera-crash-')
  dataDir = join(root, 'server')
})
beforeEach((ctx) => {
  ctx.onTestFailed(() => dumpOutput(servers))
})
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()))
  await killAllChildren()
  await removeDir(root)
})

async function start(): Promise<ServerProcess> {
  const server = await startServerProcess({ dataDir })
  servers.push(server)
  return server
}

/** The CA certificates and JWT key ids of the own bundle, from `bundle show --format spiffe`. */
async function bundleKeys(socket: string): Promise<BundleKeys> {
  const view = jsonOf<{ spiffe_bundle: string }>(
    await runCli(['bundle', 'show', '--format', 'spiffe', '--output', 'json'], { socket }),
  )
  const { keys } = JSON.parse(view.spiffe_bundle) as { keys: { use: string; x5c?: string[]; kid?: string }[] }
  return {
    x5c: keys.flatMap((k) => (k.use === 'x509-svid' ? (k.x5c ?? []) : [])).sort(),
    kids: keys.flatMap((k) => (k.use === 'jwt-svid' && k.kid !== undefined ? [k.kid] : [])).sort(),
  }
}

/**
 * Creates entries with `CONCURRENCY` calls in flight until the server stops answering; `kill -9`s
 * it once `ACKS_BEFORE_KILL` creates have been acknowledged. Returns the acknowledged ids.
 */
async function burstUntilKilled(server: ServerProcess, admin: AdminClients): Promise<string[]> {
  const acked: string[] = []
  let next = 0
  let killing: Promise<void> | undefined
  const worker = async () => {
    for (;;) {
      const i = next++
      const entry = {
        spiffe_id: `spiffe://${TD}/burst/${i}`,
        parent_id: `spiffe://${TD}/agent`,
        selectors: [{ type: 'unix', value: `uid:${i}` }],
        dns_names: [`w${i}.example.org`],
      }
      try {
        const created = await callRaw<Entry__Output>((o, r) => admin.entries.CreateEntry({ entry }, o, r))
        acked.push(created.id)
      } catch {
        return // the server is gone
      }
      if (acked.length >= ACKS_BEFORE_KILL) killing ??= server.kill9()
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  await killing
  return acked
}

describe('server killed with kill -9 during a burst of entry creates', () => {
  it('keeps every acknowledged entry, and the same CA certificates and JWT keys', async () => {
    const first = await start()
    const before = await bundleKeys(first.socket)
    expect(before.x5c.length).toBeGreaterThan(0)
    expect(before.kids.length).toBeGreaterThan(0)
    const admin = connectAdmin(first.socket)
    let acked: string[]
    try {
      acked = await burstUntilKilled(first, admin)
    } finally {
      admin.close()
    }
    expect(first.child.signalCode).toBe('SIGKILL')
    expect(acked.length).toBeGreaterThanOrEqual(ACKS_BEFORE_KILL)

    const second = await start()
    const { entries } = jsonOf<{ entries: { id: string; selectors: unknown[]; dns_names: unknown[] }[] }>(
      await runCli(['entry', 'show', '--output', 'json'], { socket: second.socket }),
    )
    const stored = new Set(entries.map((e) => e.id))
    expect(acked.filter((id) => !stored.has(id))).toEqual([])
    // Nothing half-written: every stored entry, acknowledged or not, has all of its rows.
    for (const e of entries) expect([e.selectors.length, e.dns_names.length]).toEqual([1, 1])
    expect(await bundleKeys(second.socket)).toEqual(before)
  })
})
