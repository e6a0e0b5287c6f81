import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type AdminClients, callAdmin, connectAdmin } from '../cli/admin-client.js'
import type { ListEntriesResponse__Output } from '../common/gen/tessera/admin/v1/ListEntriesResponse.js'
import type { Entry } from '../common/gen/tessera/types/v1/Entry.js'
import { createLogger } from '../common/log/logger.js'
import { PinoAuditLog } from '../common/log/pino-audit-log.js'
import type { EntryFields } from '../lib/core/registration-entry.js'
import { Selector } from '../lib/core/selector.js'
import { SpiffeId } from '../lib/core/spiffe-id.js'
import type { TrustDomain } from '../lib/core/trust-domain.js'
import { MAX_BATCH_ENTRIES } from '../server/admin-api/entries-handlers.js'
import type { EntryStore } from '../server/datastore/ports.js'
import { openSqliteDatastore } from '../server/datastore/sqlite/datastore.js'
import { type RunningServer, startServer } from '../server/server-app.js'
import { loadServerConfig } from '../server/server-config.js'
import { type BenchResult, compare, measureAsync } from './harness.js'

/** Entries listed by the listing benchmark. */
const LISTED_ENTRIES = 10_000
/** Page size of the listing: the datastore's largest. */
const LIST_PAGE_SIZE = 1000

let counter = 0

/** A fresh, valid entry (unique SPIFFE ID), as the CLI would send it. */
function nextEntry(td: TrustDomain): Entry {
  counter += 1
  return {
    spiffe_id: `spiffe://${td.name}/bench/workload/${counter}`,
    parent_id: `spiffe://${td.name}/tessera/agent/join_token/bench`,
    selectors: [
      { type: 'unix', value: `uid:${1000 + (counter % 5000)}` },
      { type: 'unix', value: 'path:/usr/bin/bench' },
    ],
    x509_svid_ttl: 3600,
    dns_names: [`w${counter}.bench.example`],
  }
}

/** The same entry as domain fields, for the raw datastore. */
function toFields(entry: Entry): EntryFields {
  return {
    spiffeId: SpiffeId.parse(entry.spiffe_id ?? ''),
    parentId: SpiffeId.parse(entry.parent_id ?? ''),
    selectors: (entry.selectors ?? []).map((s) => Selector.from(s.type ?? '', s.value ?? '')),
    x509SvidTtlMs: 3_600_000,
    jwtSvidTtlMs: 0,
    dnsNames: entry.dns_names ?? [],
    hint: '',
    admin: false,
    federatesWith: [],
    expiresAtMs: undefined,
  }
}

/** A real server (datastore, CA, admin API on a UDS, agent API on port 0) in `dir`, quiet. */
async function startQuietServer(dir: string): Promise<{ server: RunningServer; audit: PinoAuditLog }> {
  const config = loadServerConfig({
    flags: { dataDir: join(dir, 'server'), bindPort: '0', logLevel: 'error' },
    env: {},
    cwd: dir,
  })
  const audit = PinoAuditLog.open(config.auditLogPath)
  const server = await startServer(config, { log: createLogger({ level: 'error', format: 'json' }), audit })
  return { server, audit }
}

/** Tops the server's entries up to `total` through BatchCreateEntry. */
async function seed(admin: AdminClients, store: EntryStore, td: TrustDomain, total: number): Promise<void> {
  for (let missing = total - (await store.count()); missing > 0; missing -= MAX_BATCH_ENTRIES) {
    const entries = Array.from({ length: Math.min(missing, MAX_BATCH_ENTRIES) }, () => nextEntry(td))
    await callAdmin(admin, (o, r) => admin.entries.BatchCreateEntry({ entries }, o, r))
  }
}

/** Milliseconds to read every page of the entries, best of three. */
async function timeListing(listPage: (token: string) => Promise<string>): Promise<number> {
  let best = Number.POSITIVE_INFINITY
  for (let run = 0; run < 3; run++) {
    const started = performance.now()
    let token = ''
    do token = await listPage(token)
    while (token !== '')
    best = Math.min(best, performance.now() - started)
  }
  return best
}

function listingResult(listed: number, apiMs: number, rawMs: number): BenchResult {
  const rate = (ms: number) => Math.round((listed * 1000) / ms)
  return {
    name: `admin API: list ${listed} entries, all pages (${Math.round(apiMs)} ms) vs datastore`,
    value: rate(apiMs),
    unit: 'entries/s',
    baseline: rate(rawMs),
    ratio: Math.round((rawMs / apiMs) * 1000) / 1000,
  }
}

/**
 * Registration through the admin API over its Unix socket, beside the raw datastore in the same
 * run: entry creates per second (each one audited and durable, `synchronous=FULL`), and the time to
 * list 10k entries page by page.
 */
export async function benchRegistration(): Promise<BenchResult[]> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-bench-reg-'))
  const { server, audit } = await startQuietServer(dir)
  const td = server.context.trustDomain
  const raw = await openSqliteDatastore({ path: join(dir, 'raw.sqlite3'), trustDomain: td })
  const admin = connectAdmin(server.context.settings.adminSocket)
  try {
    const rawRate = await measureAsync(() => raw.entries.create(toFields(nextEntry(td))))
    const apiRate = await measureAsync(() =>
      callAdmin(admin, (o, r) => admin.entries.CreateEntry({ entry: nextEntry(td) }, o, r)),
    )
    const store = server.context.datastore.entries
    await seed(admin, store, td, LISTED_ENTRIES)
    const listed = await store.count()
    const apiMs = await timeListing(async (page_token) => {
      const request = { page_size: LIST_PAGE_SIZE, page_token }
      const page = await callAdmin<ListEntriesResponse__Output>(admin, (o, r) =>
        admin.entries.ListEntries(request, o, r),
      )
      return page.next_page_token
    })
    const rawMs = await timeListing(async (pageToken) => {
      const page = await store.list({}, { pageSize: LIST_PAGE_SIZE, pageToken })
      return page.nextPageToken ?? ''
    })
    return [
      compare('admin API: entry creates over the UDS vs raw datastore creates', apiRate, rawRate),
      listingResult(listed, apiMs, rawMs),
    ]
  } finally {
    admin.close()
    await raw.close()
    await server.stop()
    audit.close()
    await rm(dir, { recursive: true, force: true })
  }
}
