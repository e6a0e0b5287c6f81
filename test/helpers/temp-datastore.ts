import { join } from 'node:path'
import { ManualClock } from '../../lib/core/clock.js'
import type { EntryFields } from '../../lib/core/registration-entry.js'
import { Selector } from '../../lib/core/selector.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import { TrustDomain } from '../../lib/core/trust-domain.js'
import { openSqliteDatastore, type SqliteDatastore } from '../../server/datastore/sqlite/datastore.js'
import { makeTempDir, removeDir } from './processes.js'

/** The trust domain of {@link openTempDatastore}. */
export const TEST_TRUST_DOMAIN = TrustDomain.parse('example.org')

/** Where {@link openTempDatastore} starts its clock (2025-01-01). */
export const TEST_START_MS = Date.UTC(2025, 0, 1)

/** A datastore on a file in a fresh temp directory, for tests and measurements. */
export interface TempDatastore {
  readonly dir: string
  readonly path: string
  readonly clock: ManualClock
  /** The open datastore ({@link TempDatastore.reopen} replaces it). */
  store: SqliteDatastore
  /** Closes the datastore and opens the same file again. */
  reopen(): Promise<SqliteDatastore>
  /** Closes the datastore and removes the directory. */
  cleanup(): Promise<void>
}

/**
 * Opens a datastore on `<tmpdir>/tessera-ds-*\/tessera.db` with a manual clock.
 * @throws ERR_DATASTORE_IO, ERR_DATASTORE_SCHEMA
 */
export async function openTempDatastore(): Promise<TempDatastore> {
  const dir = await makeTempDir('tessera-ds-')
  const path = join(dir, 'data', 'tessera.db')
  const clock = new ManualClock(TEST_START_MS)
  const open = () => openSqliteDatastore({ path, trustDomain: TEST_TRUST_DOMAIN, clock })
  let store: SqliteDatastore
  try {
    store = await open()
  } catch (err) {
    await removeDir(dir)
    throw err
  }
  const temp: TempDatastore = {
    dir,
    path,
    clock,
    store,
    async reopen() {
      await temp.store.close()
      temp.store = await open()
      return temp.store
    },
    async cleanup() {
      await temp.store.close()
      await removeDir(dir)
    },
  }
  return temp
}

/** A SPIFFE ID in {@link TEST_TRUST_DOMAIN}: `id('/web')`. */
export function testId(path: string): SpiffeId {
  return SpiffeId.fromPath(TEST_TRUST_DOMAIN, path)
}

/** Valid entry fields (`/web` under `/agent`, `unix:uid:1000`), with `overrides` applied. */
export function testEntryFields(overrides: Partial<EntryFields> = {}): EntryFields {
  return {
    spiffeId: testId('/web'),
    parentId: testId('/agent'),
    selectors: [Selector.parse('unix:uid:1000')],
    x509SvidTtlMs: 0,
    jwtSvidTtlMs: 0,
    dnsNames: [],
    hint: '',
    admin: false,
    federatesWith: [],
    expiresAtMs: undefined,
    ...overrides,
  }
}

/** Selectors from their texts: `selectors('unix:uid:1', 'unix:gid:2')`. */
export function selectors(...texts: string[]): Selector[] {
  return texts.map((t) => Selector.parse(t))
}
