import type Database from 'better-sqlite3'
import { ENTRY_COLUMNS, type EntryParams, type EntryRow } from './entry-rows.js'

/** The fixed prepared statements of the entry store. */
export interface EntryStatements {
  readonly insert: Database.Statement<[EntryParams]>
  readonly update: Database.Statement<[EntryParams], { revision: number; created_at_ms: number }>
  readonly insertChildren: ReadonlyArray<Database.Statement<[EntryParams]>>
  readonly deleteChildren: ReadonlyArray<Database.Statement<[string]>>
  readonly fetch: Database.Statement<[string], EntryRow>
  readonly revision: Database.Statement<[string], number>
  readonly delete: Database.Statement<[string]>
  readonly prune: Database.Statement<[number]>
  readonly listByParents: Database.Statement<[string], EntryRow>
}

const INSERT = `INSERT INTO entries (id, spiffe_id, parent_id, selectors_hash, selector_count, federates_count,
    x509_svid_ttl_ms, jwt_svid_ttl_ms, hint, admin, expires_at_ms, revision, created_at_ms, updated_at_ms)
  VALUES (@id, @spiffeId, @parentId, @selectorsHash, @selectorCount, @federatesCount,
    @x509SvidTtlMs, @jwtSvidTtlMs, @hint, @admin, @expiresAtMs, 0, @nowMs, @nowMs)`

const UPDATE = `UPDATE entries SET spiffe_id = @spiffeId, parent_id = @parentId, selectors_hash = @selectorsHash,
    selector_count = @selectorCount, federates_count = @federatesCount, x509_svid_ttl_ms = @x509SvidTtlMs,
    jwt_svid_ttl_ms = @jwtSvidTtlMs, hint = @hint, admin = @admin, expires_at_ms = @expiresAtMs,
    revision = revision + 1, updated_at_ms = @nowMs
  WHERE id = @id RETURNING revision, created_at_ms`

const INSERT_CHILDREN = [
  `INSERT INTO entry_selectors (entry_id, type, value)
    SELECT @id, j.value ->> 0, j.value ->> 1 FROM json_each(@selectorsJson) j`,
  `INSERT INTO entry_dns_names (entry_id, position, dns_name)
    SELECT @id, j.key, j.value FROM json_each(@dnsNamesJson) j`,
  `INSERT INTO entry_federates_with (entry_id, trust_domain)
    SELECT @id, j.value FROM json_each(@federatesJson) j`,
]

const CHILD_TABLES = ['entry_selectors', 'entry_dns_names', 'entry_federates_with']

/** Prepares the entry store's fixed statements on `db`. */
export function prepareEntryStatements(db: Database.Database): EntryStatements {
  return {
    insert: db.prepare<[EntryParams]>(INSERT),
    update: db.prepare<[EntryParams], { revision: number; created_at_ms: number }>(UPDATE),
    insertChildren: INSERT_CHILDREN.map((sql) => db.prepare<[EntryParams]>(sql)),
    deleteChildren: CHILD_TABLES.map((t) => db.prepare<[string]>(`DELETE FROM ${t} WHERE entry_id = ?`)),
    fetch: db.prepare<[string], EntryRow>(`SELECT ${ENTRY_COLUMNS} FROM entries e WHERE e.id = ?`),
    revision: db.prepare<[string], number>('SELECT revision FROM entries WHERE id = ?').pluck(),
    delete: db.prepare<[string]>('DELETE FROM entries WHERE id = ?'),
    prune: db.prepare<[number]>('DELETE FROM entries WHERE expires_at_ms IS NOT NULL AND expires_at_ms <= ?'),
    listByParents: db.prepare<[string], EntryRow>(
      `SELECT ${ENTRY_COLUMNS} FROM entries e
        WHERE e.parent_id IN (SELECT j.value FROM json_each(?) j) ORDER BY e.id`,
    ),
  }
}
