import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { codeOf } from '../../../test/helpers/error-code.js'
import {
  openTempDatastore,
  selectors,
  TEST_START_MS,
  TEST_TRUST_DOMAIN,
  type TempDatastore,
  testEntryFields,
  testId,
} from '../../../test/helpers/temp-datastore.js'
import { openSqliteDatastore } from './datastore.js'
import { SCHEMA_VERSION } from './migrations/migrate.js'
import { openDatabase } from './open.js'

let t: TempDatastore
beforeEach(async () => {
  t = await openTempDatastore()
})
afterEach(async () => {
  await t.cleanup()
})

const open = (path: string) => openSqliteDatastore({ path, trustDomain: TEST_TRUST_DOMAIN })

describe('datastore file', () => {
  it('finds everything again after a reopen', async () => {
    const e = await t.store.entries.create(testEntryFields({ dnsNames: ['a.example.org'] }))
    await t.store.entries.update(e.id, testEntryFields({ hint: 'h' }))
    await t.store.joinTokens.create({ token: 'tok', expiresAtMs: TEST_START_MS + 1000 })
    const agent = {
      spiffeId: testId('/tessera/agent/join_token/x'),
      attestationType: 'join_token',
      serialHex: '01',
      expiresAtMs: TEST_START_MS + 1000,
      banned: false,
      selectors: selectors('join_token:id:x'),
    }
    await t.store.agents.create(agent)
    await t.store.bundles.set(TEST_TRUST_DOMAIN, '{"keys":[]}', 3n)
    await t.store.keyJournal.save('journal')
    const store = await t.reopen()
    expect((await store.entries.fetch(e.id))?.hint).toBe('h')
    expect((await store.entries.fetch(e.id))?.revision).toBe(1)
    expect(await store.joinTokens.consume('tok', TEST_START_MS)).toBeDefined()
    expect((await store.agents.fetch(agent.spiffeId))?.serialHex).toBe('01')
    expect((await store.bundles.fetch(TEST_TRUST_DOMAIN))?.sequence).toBe(3n)
    expect(await store.keyJournal.load()).toBe('journal')
  })

  it('creates the file 0600 in a directory 0700, and its WAL 0600', async () => {
    await t.store.entries.create(testEntryFields())
    expect((await stat(t.path)).mode & 0o777).toBe(0o600)
    expect((await stat(`${t.path}-wal`)).mode & 0o777).toBe(0o600)
    expect((await stat(join(t.dir, 'data'))).mode & 0o777).toBe(0o700)
  })

  it('opens with WAL, synchronous=FULL, foreign keys and a busy timeout', () => {
    const db = openDatabase({ path: join(t.dir, 'pragmas.db'), busyTimeoutMs: 1234 })
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal')
      expect(db.pragma('synchronous', { simple: true })).toBe(2)
      expect(db.pragma('foreign_keys', { simple: true })).toBe(1)
      expect(db.pragma('busy_timeout', { simple: true })).toBe(1234)
    } finally {
      db.close()
    }
  })

  it('tightens an existing file to 0600', async () => {
    const path = join(t.dir, 'loose.db')
    await (await open(path)).close()
    await chmod(path, 0o644)
    const store = await open(path)
    await store.close()
    expect((await stat(path)).mode & 0o777).toBe(0o600)
  })

  it('refuses a database written by a newer schema, and leaves it untouched', async () => {
    await t.store.close()
    const raw = new Database(t.path)
    raw.prepare('UPDATE schema_version SET version = ?').run(SCHEMA_VERSION + 1)
    raw.close()
    expect(await codeOf(open(t.path))).toBe('ERR_DATASTORE_SCHEMA')
    const check = new Database(t.path, { readonly: true })
    expect(check.prepare('SELECT version FROM schema_version').pluck().get()).toBe(SCHEMA_VERSION + 1)
    check.close()
    t.store = await open(join(t.dir, 'fresh.db'))
  })

  it('refuses a malformed schema version row', async () => {
    await t.store.close()
    const raw = new Database(t.path)
    raw.prepare("UPDATE schema_version SET version = 'two'").run()
    raw.close()
    expect(await codeOf(open(t.path))).toBe('ERR_DATASTORE_SCHEMA')
    t.store = await open(join(t.dir, 'fresh.db'))
  })

  it('reports a file that is not a database, or an empty one, as ERR_DATASTORE_CORRUPT', async () => {
    const path = join(t.dir, 'junk.db')
    await writeFile(path, 'this is not an SQLite database, just some text'.repeat(100))
    expect(await codeOf(open(path))).toBe('ERR_DATASTORE_CORRUPT')
    await writeFile(path, '')
    expect(await codeOf(open(path))).toBe('ERR_DATASTORE_CORRUPT')
    expect((await stat(path)).size).toBe(0)
  })

  it('says whether the file was created by this open (a fresh install)', async () => {
    const path = join(t.dir, 'fresh.db')
    const first = await open(path)
    expect(first.isNew).toBe(true)
    await first.close()
    const second = await open(path)
    expect(second.isNew).toBe(false)
    await second.close()
  })

  it('reports a path it cannot create as ERR_DATASTORE_IO', async () => {
    const file = join(t.dir, 'plain-file')
    await writeFile(file, '')
    expect(await codeOf(open(join(file, 'sub', 'x.db')))).toBe('ERR_DATASTORE_IO')
  })

  it('reports use after close as ERR_DATASTORE_IO', async () => {
    await t.store.close()
    await t.store.close()
    expect(await codeOf(t.store.entries.count())).toBe('ERR_DATASTORE_IO')
    t.store = await open(t.path)
  })
})

describe('datastore in a fresh directory', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tessera-ds-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('migrates an empty file to the current schema version', async () => {
    const path = join(dir, 'new.db')
    const store = await open(path)
    await store.close()
    const check = new Database(path, { readonly: true })
    expect(check.prepare('SELECT version FROM schema_version').pluck().get()).toBe(SCHEMA_VERSION)
    check.close()
  })
})
