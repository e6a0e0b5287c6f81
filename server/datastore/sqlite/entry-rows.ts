import { createHash } from 'node:crypto'
import type { EntryFields, RegistrationEntry } from '../../../lib/core/registration-entry.js'
import { normalizeSelectors, Selector } from '../../../lib/core/selector.js'
import { SpiffeId } from '../../../lib/core/spiffe-id.js'
import { TrustDomain } from '../../../lib/core/trust-domain.js'
import { readRow } from './guard.js'

/** An entry as {@link ENTRY_COLUMNS} selects it; child rows arrive as JSON arrays. */
export interface EntryRow {
  readonly id: string
  readonly spiffe_id: string
  readonly parent_id: string
  readonly x509_svid_ttl_ms: number
  readonly jwt_svid_ttl_ms: number
  readonly hint: string
  readonly admin: number
  readonly expires_at_ms: number | null
  readonly revision: number
  readonly created_at_ms: number
  /** `[[type, value], …]` */
  readonly selectors_json: string
  /** `[name, …]` in their original order */
  readonly dns_names_json: string
  /** `[trust domain name, …]` */
  readonly federates_with_json: string
}

/** The select list that yields an {@link EntryRow} from `entries e`, child tables included. */
export const ENTRY_COLUMNS = `e.id, e.spiffe_id, e.parent_id, e.x509_svid_ttl_ms, e.jwt_svid_ttl_ms, e.hint,
  e.admin, e.expires_at_ms, e.revision, e.created_at_ms,
  (SELECT json_group_array(json_array(s.type, s.value)) FROM entry_selectors s WHERE s.entry_id = e.id)
    AS selectors_json,
  (SELECT json_group_array(d.dns_name ORDER BY d.position) FROM entry_dns_names d WHERE d.entry_id = e.id)
    AS dns_names_json,
  (SELECT json_group_array(f.trust_domain ORDER BY f.trust_domain) FROM entry_federates_with f
    WHERE f.entry_id = e.id) AS federates_with_json`

/** An entry's own columns, as named parameters of the insert and update statements. */
export interface EntryParams {
  readonly id: string
  readonly spiffeId: string
  readonly parentId: string
  readonly selectorsHash: string
  readonly selectorCount: number
  readonly federatesCount: number
  readonly x509SvidTtlMs: number
  readonly jwtSvidTtlMs: number
  readonly hint: string
  readonly admin: number
  readonly expiresAtMs: number | null
  readonly nowMs: number
  /** `[[type, value], …]` for the child-table inserts. */
  readonly selectorsJson: string
  readonly dnsNamesJson: string
  readonly federatesJson: string
}

/**
 * The SHA-256 (hex) of a normalized selector list: equal for equal sets. Selector texts never hold
 * control characters, so a newline separates them unambiguously.
 */
export function hashSelectors(selectors: ReadonlyArray<Selector>): string {
  return createHash('sha256')
    .update(selectors.map((s) => s.toString()).join('\n'))
    .digest('hex')
}

/** The statement parameters for normalized `fields`. */
export function toEntryParams(id: string, fields: EntryFields, nowMs: number): EntryParams {
  return {
    id,
    spiffeId: fields.spiffeId.toString(),
    parentId: fields.parentId.toString(),
    selectorsHash: hashSelectors(fields.selectors),
    selectorCount: fields.selectors.length,
    federatesCount: fields.federatesWith.length,
    x509SvidTtlMs: fields.x509SvidTtlMs,
    jwtSvidTtlMs: fields.jwtSvidTtlMs,
    hint: fields.hint,
    admin: fields.admin ? 1 : 0,
    expiresAtMs: fields.expiresAtMs ?? null,
    nowMs,
    selectorsJson: JSON.stringify(fields.selectors.map((s) => [s.type, s.value])),
    dnsNamesJson: JSON.stringify(fields.dnsNames),
    federatesJson: JSON.stringify(fields.federatesWith.map((td) => td.name)),
  }
}

/** A frozen {@link RegistrationEntry} with its own copies of the arrays. */
export function freezeEntry(
  fields: EntryFields,
  meta: Pick<RegistrationEntry, 'id' | 'revision' | 'createdAtMs'>,
): RegistrationEntry {
  return Object.freeze({
    id: meta.id,
    spiffeId: fields.spiffeId,
    parentId: fields.parentId,
    selectors: Object.freeze([...fields.selectors]),
    x509SvidTtlMs: fields.x509SvidTtlMs,
    jwtSvidTtlMs: fields.jwtSvidTtlMs,
    dnsNames: Object.freeze([...fields.dnsNames]),
    hint: fields.hint,
    admin: fields.admin,
    federatesWith: Object.freeze([...fields.federatesWith]),
    expiresAtMs: fields.expiresAtMs,
    revision: meta.revision,
    createdAtMs: meta.createdAtMs,
  })
}

function parseStringArray(json: string): string[] {
  const list: unknown = JSON.parse(json)
  if (!Array.isArray(list) || !list.every((v) => typeof v === 'string')) throw new Error('not a string array')
  return list
}

function parseSelectors(json: string): Selector[] {
  const pairs: unknown = JSON.parse(json)
  if (!Array.isArray(pairs)) throw new Error('selectors are not an array')
  return pairs.map((p: unknown) => {
    if (!Array.isArray(p) || p.length !== 2) throw new Error('malformed selector pair')
    return Selector.from(String(p[0]), String(p[1]))
  })
}

/**
 * The domain entry of a row.
 * @throws ERR_DATASTORE_IO when a stored value is no longer valid
 */
export function rowToEntry(row: EntryRow): RegistrationEntry {
  return readRow(`entry ${row.id}`, () =>
    freezeEntry(
      {
        spiffeId: SpiffeId.parse(row.spiffe_id),
        parentId: SpiffeId.parse(row.parent_id),
        selectors: normalizeSelectors(parseSelectors(row.selectors_json)),
        x509SvidTtlMs: row.x509_svid_ttl_ms,
        jwtSvidTtlMs: row.jwt_svid_ttl_ms,
        dnsNames: parseStringArray(row.dns_names_json),
        hint: row.hint,
        admin: row.admin !== 0,
        federatesWith: parseStringArray(row.federates_with_json).map((n) => TrustDomain.fromValidated(n)),
        expiresAtMs: row.expires_at_ms ?? undefined,
      },
      { id: row.id, revision: row.revision, createdAtMs: row.created_at_ms },
    ),
  )
}
