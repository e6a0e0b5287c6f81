import { randomBytes } from 'node:crypto'
import { closeSync, openSync, statSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Selector } from '../../lib/core/selector.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import { TrustDomain } from '../../lib/core/trust-domain.js'
import { openSqliteDatastore } from '../../server/datastore/sqlite/datastore.js'
import {
  dumpOutput,
  killAllChildren,
  makeTempDir,
  removeDir,
  requireBuild,
  runCli,
  type ServerProcess,
  startServerProcess,
  waitFor,
} from '../helpers/processes.js'

const TD = TrustDomain.parse('tessera.local')
/** Enough for a few hundred pages, so "the middle" of the file is entry data. */
const ENTRIES = 3000
const PAGE = 4096

let root: string
let dataDir: string
let server: ServerProcess | undefined

beforeAll(async () => {
  requireBuild()
  root = await makeTempDir('tessera-corrupt-')
  dataDir = join(root, 'server')
})
afterAll(async () => {
  await server?.stop()
  await killAllChildren()
  await removeDir(root)
})

/** Adds `ENTRIES` entries to the stopped server's datastore, through the datastore code itself. */
async function populate(path: string): Promise<void> {
  const store = await openSqliteDatastore({ path, trustDomain: TD })
  const parentId = SpiffeId.fromPath(TD, '/agent')
  const batch = (from: number) =>
    Array.from({ length: 500 }, (_, k) => ({
      spiffeId: SpiffeId.fromPath(TD, `/w/${from + k}`),
      parentId,
      selectors: [Selector.parse(`unix:uid:${from + k}`)],
      x509SvidTtlMs: 0,
      jwtSvidTtlMs: 0,
      dnsNames: [`w${from + k}.example.org`],
      hint: '',
      admin: false,
      federatesWith: [],
      expiresAtMs: undefined,
    }))
  try {
    for (let i = 0; i < ENTRIES; i += 500) await store.entries.createBatch(batch(i))
  } finally {
    await store.close()
  }
}

/**
 * Makes the running server drop its page cache (it holds the whole file after its start-up check):
 * another connection commits a small write, which the server sees in the WAL index at its next read
 * and so reads every page from the file again, as it would for a file larger than its cache.
 */
function touchFromAnotherConnection(path: string): void {
  const db = new Database(path)
  try {
    db.prepare('INSERT INTO join_tokens (token_sha256, expires_at_ms, created_at_ms) VALUES (?, 0, 0)').run(
      'x',
    )
  } finally {
    db.close()
  }
}

/** Random bytes over the middle fifth of the file, a page at a time. */
function scribbleOverMiddle(path: string): void {
  const pages = Math.floor(statSync(path).size / PAGE)
  const fd = openSync(path, 'r+')
  try {
    for (let p = Math.floor(pages * 0.4); p < Math.floor(pages * 0.6); p++)
      writeSync(fd, randomBytes(PAGE), 0, PAGE, p * PAGE)
  } finally {
    closeSync(fd)
  }
}

function logRecords(s: ServerProcess): Array<Record<string, unknown>> {
  return s
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

describe('corruption found while the server runs', () => {
  it('is logged at error with its cause, and the server reports not ready', async (ctx) => {
    ctx.onTestFailed(() => dumpOutput([server]))
    const first = await startServerProcess({ dataDir })
    await first.stop()
    const dbPath = join(dataDir, 'datastore.sqlite3')
    await populate(dbPath)

    server = await startServerProcess({ dataDir })
    const socket = server.socket
    const healthy = await runCli(['server', 'healthcheck'], { socket })
    expect(healthy.code, healthy.stderr).toBe(0)

    scribbleOverMiddle(dbPath)
    touchFromAnotherConnection(dbPath)
    const listed = await runCli(['entry', 'show', '--output', 'json'], { socket })
    expect(listed.code).not.toBe(0)
    expect(listed.stderr).toMatch(/^error ERR_DATASTORE_CORRUPT: /)

    const running = server
    await waitFor(
      () => logRecords(running).some((r) => r['code'] === 'ERR_DATASTORE_CORRUPT' && r['level'] === 'error'),
      {
        timeoutMs: 10_000,
      },
    )
    const logged = logRecords(running).filter((r) => r['code'] === 'ERR_DATASTORE_CORRUPT')
    expect(logged[0]).toMatchObject({
      level: 'error',
      cause: expect.stringMatching(/^SQLITE_(CORRUPT|NOTADB)/),
    })

    const sick = await runCli(['server', 'healthcheck'], { socket })
    expect(sick.code).not.toBe(0)
    expect(sick.stderr).toMatch(/^error ERR_DATASTORE_CORRUPT: /)
    expect(running.child.exitCode).toBeNull()
  })
})
