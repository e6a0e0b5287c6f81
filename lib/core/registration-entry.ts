import { isValidDnsName } from './dns-name.js'
import { IdentityError } from './errors.js'
import { normalizeSelectors, type Selector } from './selector.js'
import type { SpiffeId } from './spiffe-id.js'
import type { TrustDomain } from './trust-domain.js'

/**
 * A registration entry (DESIGN §3, same meaning as SPIRE's): workloads that carry every one of
 * `selectors`, attested by the agent `parentId` (or an agent holding that alias), get `spiffeId`.
 */
export interface RegistrationEntry {
  readonly id: string
  readonly spiffeId: SpiffeId
  readonly parentId: SpiffeId
  /** Normalized: distinct and sorted. */
  readonly selectors: ReadonlyArray<Selector>
  /** 0 means the server default. */
  readonly x509SvidTtlMs: number
  /** 0 means the server default. */
  readonly jwtSvidTtlMs: number
  readonly dnsNames: ReadonlyArray<string>
  /** Operator label passed to workloads ('' when none). */
  readonly hint: string
  /** The holder may call the admin API over mTLS on the server's TCP port (remote admin). */
  readonly admin: boolean
  readonly federatesWith: ReadonlyArray<TrustDomain>
  /** When the entry stops being served; undefined = never. */
  readonly expiresAtMs: number | undefined
  /** Incremented on every update. */
  readonly revision: number
  readonly createdAtMs: number
}

/** The fields an admin supplies for a new entry. */
export type EntryFields = Omit<RegistrationEntry, 'id' | 'revision' | 'createdAtMs'>

/** Longest hint, in bytes (spec §2.3 says SHOULD be ≤ 1024). */
export const MAX_HINT_BYTES = 1024
/** Most selectors, DNS names or federated trust domains one entry may carry. */
export const MAX_ENTRY_LIST = 64
/** Longest TTL an entry may ask for (10 years, in ms). */
export const MAX_ENTRY_TTL_MS = 10 * 365 * 24 * 60 * 60 * 1000

/** The first problem with an entry's fields, or undefined. Pure. */
export function findEntryProblem(fields: EntryFields, trustDomain: TrustDomain): string | undefined {
  if (!fields.spiffeId.memberOf(trustDomain)) return 'spiffe_id must be in the server trust domain'
  if (fields.spiffeId.isRoot) return 'spiffe_id must have a non-root path'
  const issuance = fields.spiffeId.issuanceProblem()
  if (issuance) return issuance
  if (!fields.parentId.memberOf(trustDomain)) return 'parent_id must be in the server trust domain'
  if (fields.selectors.length === 0) return 'an entry needs at least one selector'
  if (fields.selectors.length > MAX_ENTRY_LIST)
    return `an entry may carry at most ${MAX_ENTRY_LIST} selectors`
  for (const ttl of [fields.x509SvidTtlMs, fields.jwtSvidTtlMs]) {
    if (!Number.isInteger(ttl) || ttl < 0 || ttl > MAX_ENTRY_TTL_MS)
      return 'TTLs must be whole milliseconds between 0 and 10 years'
  }
  if (fields.dnsNames.length > MAX_ENTRY_LIST) return `an entry may carry at most ${MAX_ENTRY_LIST} DNS names`
  if (fields.dnsNames.some((d) => !isValidDnsName(d))) return 'dns_names must be valid host names'
  if (Buffer.byteLength(fields.hint, 'utf8') > MAX_HINT_BYTES)
    return `hint must be at most ${MAX_HINT_BYTES} bytes`
  if (fields.federatesWith.some((td) => td.equals(trustDomain)))
    return 'an entry cannot federate with its own trust domain'
  if (fields.expiresAtMs !== undefined && !Number.isSafeInteger(fields.expiresAtMs))
    return 'expires_at must be a time'
  return undefined
}

/**
 * Validates and normalizes an entry's fields (selectors deduplicated and sorted, DNS names lowercased,
 * federated trust domains deduplicated).
 * @throws ERR_ENTRY_INVALID
 */
export function normalizeEntryFields(fields: EntryFields, trustDomain: TrustDomain): EntryFields {
  const normalized: EntryFields = {
    ...fields,
    selectors: normalizeSelectors(fields.selectors),
    dnsNames: [...new Set(fields.dnsNames.map((d) => d.toLowerCase()))],
    federatesWith: dedupeTrustDomains(fields.federatesWith),
  }
  const problem = findEntryProblem(normalized, trustDomain)
  if (problem) throw new IdentityError('ERR_ENTRY_INVALID', problem)
  return normalized
}

function dedupeTrustDomains(list: ReadonlyArray<TrustDomain>): TrustDomain[] {
  const seen = new Map<string, TrustDomain>()
  for (const td of list) if (!seen.has(td.name)) seen.set(td.name, td)
  return [...seen.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

/** True when the entry is past its `expiresAtMs` at `nowMs`. */
export function isEntryExpired(entry: RegistrationEntry, nowMs: number): boolean {
  return entry.expiresAtMs !== undefined && entry.expiresAtMs <= nowMs
}
