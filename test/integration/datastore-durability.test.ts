import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import Database from 'better-sqlite3'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { TrustDomain } from '../../lib/core/trust-domain.js'
import { openSqliteDatastore } from '../../server/datastore/sqlite/datastore.js'
import { makeTempDir, removeDir } from '../helpers/processes.js'

const DIST = fileURLToPath(new URL('../../dist/', import.meta.url))
const distUrl = (path: string) => JSON.stringify(pathToFileURL(join(DIST, path)).href)
const ACKS_BEFORE_KILL = 200

/**
 * The child: opens the datastore through the built code and creates entries as fast as it can,
 * printing each id once `create` has resolved (the acknowledgement).
 */
const CHILD_SCRIPT = `
const { openSqliteDatastore } = await import(${distUrl('server/datastore/sqlite/datastore.js')})
const { TrustDomain } = await import(${distUrl('lib/core/trust-domain.js')})
const { SpiffeId } = await import(${distUrl('lib/core/spiffe-id.js')})
const { Selector } = await import(${distUrl('lib/core/selector.js')})
const td = TrustDomain.parse('example.org')
const store = await openSqliteDatastore({ path: process.argv[1], trustDomain: td })
for (let i = 0; ; i++) {
  const entry = await store.entries.create({
    spiffeId: SpiffeId.fromPath(td, '/burst/' + i),
    parentId: SpiffeId.fromPath(td, '/agent'),
    selectors: [Selector.parse('unix:uid:' + i), Selector.parse('unix:gid:' + (i % 7))],
    x509SvidTtlMs: 0, jwtSvidTtlMs: 0, dnsNames: ['w' + i + '.example.org'], hint: '', admin: false,
    federatesWith: [], expiresAtMs: undefined,
  })
  process.stdout.write(entry.id + '\\n')
}
`

interface Burst {
  /** Ids the child acknowledged (complete lines only). */
  readonly acked: string[]
  readonly stderr: string
}

/** Runs the child until it has acknowledged `acks` creates, kills it with SIGKILL, collects its output. */
function burstThenKill(child: ChildProcess, acks: number, deadlineMs: number): Promise<Burst> {
  return new Promise((resolve, reject) => {
    let stdout = ''
    let stderr = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`the child acknowledged too few creates in time; stderr:\n${stderr}`))
    }, deadlineMs)
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
      if (stdout.split('\n').length - 1 >= acks) child.kill('SIGKILL')
    })
    child.on('close', (_code, signal) => {
      clearTimeout(timer)
      if (signal !== 'SIGKILL') reject(new Error(`the child ended without being killed; stderr:\n${stderr}`))
      const lines = stdout.split('\n')
      resolve({ acked: lines.slice(0, -1), stderr }) // the last piece is an unfinished line, or ''
    })
  })
}

describe('datastore durability', () => {
  let dir: string
  beforeEach(async () => {
    dir = await makeTempDir('tessera-durability-')
  })
  afterEach(async () => {
    await removeDir(dir)
  })

  it('keeps every acknowledged entry when the writer is killed with SIGKILL mid-burst', async () => {
    if (!existsSync(join(DIST, 'server/datastore/sqlite/datastore.js'))) {
      throw new Error('dist/ is missing: run `npx tsc -p tsconfig.json` first (`npm test` builds it)')
    }
    const path = join(dir, 'tessera.db')
    const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD_SCRIPT, path], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const { acked, stderr } = await burstThenKill(child, ACKS_BEFORE_KILL, 20_000)
    expect(acked.length, stderr).toBeGreaterThanOrEqual(ACKS_BEFORE_KILL)

    const raw = new Database(path)
    expect(raw.pragma('integrity_check', { simple: true })).toBe('ok')
    raw.close()
    const store = await openSqliteDatastore({ path, trustDomain: TrustDomain.parse('example.org') })
    try {
      for (const id of acked) {
        const entry = await store.entries.fetch(id)
        expect(entry, `acknowledged entry ${id} is missing`).toBeDefined()
        expect(entry?.selectors).toHaveLength(2)
        expect(entry?.dnsNames).toHaveLength(1)
      }
      // Nothing half-written: every stored entry, acknowledged or not, has all of its child rows.
      const { entries } = await store.entries.list({}, { pageSize: 1000 })
      expect(entries.length).toBeGreaterThanOrEqual(acked.length)
      for (const e of entries) expect([e.selectors.length, e.dnsNames.length]).toEqual([2, 1])
    } finally {
      await store.close()
    }
  })
})
