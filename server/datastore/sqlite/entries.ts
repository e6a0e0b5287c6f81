import { randomUUID } from 'node:crypto'
import type Database from 'better-sqlite3'
import type { Clock } from '../../../lib/core/clock.js'
import { IdentityError, isIdentityError } from '../../../lib/core/errors.js'
import {
  type EntryFields,
  normalizeEntryFields,
  type RegistrationEntry,
} from '../../../lib/core/registration-entry.js'
import type { SpiffeId } from '../../../lib/core/spiffe-id.js'
import type { TrustDomain } from '../../../lib/core/trust-domain.js'
import type {
  CommitHooks,
  EntryBatchResult,
  EntryFilter,
  EntryPage,
  EntryStore,
  EntryUpdateOptions,
  PageRequest,
} from '../ports.js'
import { buildEntryConditions } from './entry-filters.js'
import {
  ENTRY_COLUMNS,
  type EntryParams,
  type EntryRow,
  freezeEntry,
  rowToEntry,
  toEntryParams,
} from './entry-rows.js'
import { type EntryStatements, prepareEntryStatements } from './entry-statements.js'
import { guard, isUniqueViolation } from './guard.js'
import { hookedTransaction } from './hooked-transaction.js'
import { decodePageToken, encodePageToken, resolvePageSize } from './page-token.js'

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

/** Options of {@link SqliteEntryStore}. */
export interface SqliteEntryStoreOptions {
  /** Entries must belong to it (checked by `normalizeEntryFields`). */
  readonly trustDomain: TrustDomain
  /** Stamps `createdAtMs` and update times. */
  readonly clock: Clock
}

function exists(err: unknown): IdentityError {
  return new IdentityError(
    'ERR_ENTRY_EXISTS',
    'an entry with the same SPIFFE ID, parent ID and selectors already exists',
    { cause: err },
  )
}

/** True for an error that concerns one batch item only (bad input), not the datastore. */
function isItemError(err: unknown): err is IdentityError {
  return isIdentityError(err) && !err.code.startsWith('ERR_DATASTORE_')
}

/** A write run by {@link hookedTransaction}: its commit hooks first, then its own arguments. */
type Hooked<A extends unknown[], T> = (hooks: CommitHooks<T> | undefined, ...args: A) => T

/** The {@link EntryStore} on SQLite: one row per entry plus child rows, written in one transaction. */
export class SqliteEntryStore implements EntryStore {
  readonly #db: Database.Database
  readonly #options: SqliteEntryStoreOptions
  readonly #stmt: EntryStatements
  readonly #filtered = new Map<string, Database.Statement<[Record<string, unknown>]>>()
  readonly #insert: (params: EntryParams) => void
  readonly #createOne: Hooked<[EntryFields], RegistrationEntry>
  readonly #createBatch: Hooked<[ReadonlyArray<EntryFields>], EntryBatchResult[]>
  readonly #update: Hooked<[string, EntryFields, number | undefined], RegistrationEntry>
  readonly #delete: Hooked<[string], RegistrationEntry>

  constructor(db: Database.Database, options: SqliteEntryStoreOptions) {
    this.#db = db
    this.#options = options
    this.#stmt = prepareEntryStatements(db)
    this.#insert = db.transaction((params: EntryParams) => this.#insertRows(params)).immediate
    this.#createOne = hookedTransaction(db, (f: EntryFields) => this.#create(f))
    this.#createBatch = hookedTransaction(db, (items: ReadonlyArray<EntryFields>) =>
      items.map((f) => this.#tryCreate(f)),
    )
    this.#update = hookedTransaction(db, (id: string, f: EntryFields, expected: number | undefined) =>
      this.#updateRows(id, f, expected),
    )
    this.#delete = hookedTransaction(db, (id: string) => this.#deleteRow(id))
  }

  async create(fields: EntryFields, hooks?: CommitHooks<RegistrationEntry>): Promise<RegistrationEntry> {
    return guard('create an entry', () => this.#createOne(hooks, fields))
  }

  async createBatch(
    items: ReadonlyArray<EntryFields>,
    hooks?: CommitHooks<ReadonlyArray<EntryBatchResult>>,
  ): Promise<ReadonlyArray<EntryBatchResult>> {
    return guard('create a batch of entries', () => this.#createBatch(hooks, items))
  }

  async fetch(id: string): Promise<RegistrationEntry | undefined> {
    return guard('fetch an entry', () => {
      const row = this.#stmt.fetch.get(id)
      return row === undefined ? undefined : rowToEntry(row)
    })
  }

  async list(filter: EntryFilter = {}, page: PageRequest = {}): Promise<EntryPage> {
    return guard('list entries', () => this.#list(filter, page))
  }

  async listByParents(parentIds: ReadonlyArray<SpiffeId>): Promise<ReadonlyArray<RegistrationEntry>> {
    const ids = JSON.stringify([...new Set(parentIds.map((p) => p.toString()))])
    return guard('list entries by parent', () => this.#stmt.listByParents.all(ids).map(rowToEntry))
  }

  async update(
    id: string,
    fields: EntryFields,
    options: EntryUpdateOptions = {},
  ): Promise<RegistrationEntry> {
    return guard('update an entry', () => {
      const normalized = normalizeEntryFields(fields, this.#options.trustDomain)
      return this.#update(options.hooks, id, normalized, options.expectedRevision)
    })
  }

  async delete(id: string, hooks?: CommitHooks<RegistrationEntry>): Promise<RegistrationEntry> {
    return guard('delete an entry', () => this.#delete(hooks, id))
  }

  async prune(nowMs: number): Promise<number> {
    return guard('prune entries', () => this.#stmt.prune.run(nowMs).changes)
  }

  async count(filter: EntryFilter = {}): Promise<number> {
    return guard('count entries', () => {
      const { where, params } = buildEntryConditions(filter)
      const sql = `SELECT count(*) AS n FROM entries e WHERE ${where}`
      return (this.#prepared(sql).get(params) as { n: number }).n
    })
  }

  #create(fields: EntryFields): RegistrationEntry {
    const normalized = normalizeEntryFields(fields, this.#options.trustDomain)
    const id = randomUUID()
    const nowMs = this.#options.clock.nowMs()
    this.#insert(toEntryParams(id, normalized, nowMs))
    return freezeEntry(normalized, { id, revision: 0, createdAtMs: nowMs })
  }

  /** One batch item, inside the batch transaction: its rows go in a savepoint, undone if it fails. */
  #tryCreate(fields: EntryFields): EntryBatchResult {
    try {
      return { ok: true, entry: this.#create(fields) }
    } catch (err) {
      if (isItemError(err)) return { ok: false, error: err }
      throw err
    }
  }

  #insertRows(params: EntryParams): void {
    try {
      this.#stmt.insert.run(params)
    } catch (err) {
      throw isUniqueViolation(err) ? exists(err) : err
    }
    for (const s of this.#stmt.insertChildren) s.run(params)
  }

  #updateRows(id: string, fields: EntryFields, expected: number | undefined): RegistrationEntry {
    const current = this.#stmt.revision.get(id)
    if (current === undefined) throw new IdentityError('ERR_ENTRY_NOT_FOUND', 'no entry has this id')
    if (expected !== undefined && expected !== current) {
      throw new IdentityError(
        'ERR_ENTRY_REVISION_CONFLICT',
        `the entry is at revision ${current}, not ${expected}`,
      )
    }
    const params = toEntryParams(id, fields, this.#options.clock.nowMs())
    let stored: { revision: number; created_at_ms: number } | undefined
    try {
      stored = this.#stmt.update.get(params)
    } catch (err) {
      throw isUniqueViolation(err) ? exists(err) : err
    }
    if (stored === undefined) throw new Error('the entry vanished during its update')
    for (const s of this.#stmt.deleteChildren) s.run(id)
    for (const s of this.#stmt.insertChildren) s.run(params)
    return freezeEntry(fields, { id, revision: stored.revision, createdAtMs: stored.created_at_ms })
  }

  #deleteRow(id: string): RegistrationEntry {
    const row = this.#stmt.fetch.get(id)
    if (row === undefined) throw new IdentityError('ERR_ENTRY_NOT_FOUND', 'no entry has this id')
    const entry = rowToEntry(row)
    this.#stmt.delete.run(id)
    return entry
  }

  #list(filter: EntryFilter, page: PageRequest): EntryPage {
    const size = resolvePageSize(page.pageSize)
    const after = decodePageToken('entries', page.pageToken, (k) => UUID_V4.test(k))
    const { where, params } = buildEntryConditions(filter)
    const cursor = after === undefined ? '' : 'e.id > @after AND '
    const sql = `SELECT ${ENTRY_COLUMNS} FROM entries e WHERE ${cursor}${where} ORDER BY e.id LIMIT @limit`
    const bound = { ...params, limit: size + 1, ...(after === undefined ? {} : { after }) }
    const rows = this.#prepared(sql).all(bound) as EntryRow[]
    const entries = rows.slice(0, size).map(rowToEntry)
    const last = entries[entries.length - 1]
    const hasMore = rows.length > size && last !== undefined
    return { entries, nextPageToken: hasMore ? encodePageToken('entries', last.id) : undefined }
  }

  #prepared(sql: string): Database.Statement<[Record<string, unknown>]> {
    let stmt = this.#filtered.get(sql)
    if (stmt === undefined) {
      stmt = this.#db.prepare<[Record<string, unknown>]>(sql)
      this.#filtered.set(sql, stmt)
    }
    return stmt
  }
}
