import { status as grpcStatus } from '@grpc/grpc-js'
import type { _tessera_admin_v1_ListEntriesRequest_Filter__Output as EntryFilterMessage } from '../../common/gen/tessera/admin/v1/ListEntriesRequest.js'
import type { Agent } from '../../common/gen/tessera/types/v1/Agent.js'
import type { Entry, Entry__Output } from '../../common/gen/tessera/types/v1/Entry.js'
import type { Selector__Output } from '../../common/gen/tessera/types/v1/Selector.js'
import type { Status } from '../../common/gen/tessera/types/v1/Status.js'
import { entryToProto } from '../../common/grpc/agent-api-convert.js'
import { isValidDnsName } from '../../lib/core/dns-name.js'
import { IdentityError } from '../../lib/core/errors.js'
import {
  type EntryFields,
  MAX_ENTRY_TTL_MS,
  type RegistrationEntry,
} from '../../lib/core/registration-entry.js'
import { Selector, type SelectorMatchMode } from '../../lib/core/selector.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import { TrustDomain } from '../../lib/core/trust-domain.js'
import { statusFor } from '../../lib/grpc/status.js'
import type { AttestedAgent, EntryFilter, PageRequest } from '../datastore/ports.js'

/** Latest `expires_at` accepted: 9999-12-31T23:59:59Z, in Unix seconds. */
export const MAX_EXPIRES_AT_SECONDS = 253_402_300_799
/** Longest TTL an entry may ask for, in seconds. */
const MAX_TTL_SECONDS = MAX_ENTRY_TTL_MS / 1000
const MATCH_MODES: ReadonlySet<string> = new Set<SelectorMatchMode>(['exact', 'subset', 'superset', 'any'])
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/

function invalidRequest(message: string): IdentityError {
  return new IdentityError('ERR_REQUEST_INVALID', message)
}

/**
 * An entry id from a request: the UUID the datastore gave the entry.
 * @throws ERR_REQUEST_INVALID
 */
export function toEntryId(id: string): string {
  if (typeof id !== 'string' || id === '') throw invalidRequest('an entry id is required')
  if (!UUID.test(id)) throw invalidRequest('an entry id must be a UUID')
  return id.toLowerCase()
}

/**
 * A SPIFFE ID from a request field.
 * @throws ERR_ID_INVALID
 */
export function toSpiffeId(text: string, field: string): SpiffeId {
  if (text === '') throw new IdentityError('ERR_ID_INVALID', `${field} is required`)
  return SpiffeId.parse(text)
}

function toSelectors(list: ReadonlyArray<Selector__Output>): Selector[] {
  return list.map((s) => Selector.from(s.type, s.value))
}

/** Seconds on the wire (0 = server default) to milliseconds. @throws ERR_TTL_INVALID */
function toTtlMs(seconds: number, field: string): number {
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > MAX_TTL_SECONDS)
    throw new IdentityError('ERR_TTL_INVALID', `${field} must be whole seconds from 0 to ten years`)
  return seconds * 1000
}

/** Unix seconds on the wire (0 = never) to milliseconds. @throws ERR_ENTRY_INVALID */
function toExpiresAtMs(seconds: number): number | undefined {
  if (seconds === 0) return undefined
  if (!Number.isSafeInteger(seconds) || seconds < 0 || seconds > MAX_EXPIRES_AT_SECONDS)
    throw new IdentityError('ERR_ENTRY_INVALID', 'expires_at must be Unix seconds from 1970 to 9999')
  return seconds * 1000
}

function toDnsNames(list: ReadonlyArray<string>): string[] {
  for (const name of list) {
    if (!isValidDnsName(name))
      throw new IdentityError('ERR_DNS_NAME_INVALID', 'dns_names must be valid host names')
  }
  return [...list]
}

function toHint(hint: string): string {
  if (CONTROL.test(hint))
    throw new IdentityError('ERR_ENTRY_INVALID', 'hint cannot contain control characters')
  return hint
}

/**
 * The fields of an entry message, each one validated; the whole entry is checked again
 * (`normalizeEntryFields`: trust domain, sizes) by the service.
 * @throws ERR_REQUEST_INVALID, ERR_ID_INVALID, ERR_SELECTOR_INVALID, ERR_TTL_INVALID,
 *   ERR_DNS_NAME_INVALID, ERR_TRUST_DOMAIN_INVALID, ERR_ENTRY_INVALID
 */
export function toEntryFields(entry: Entry__Output | null | undefined): EntryFields {
  if (entry === null || entry === undefined) throw invalidRequest('an entry is required')
  return {
    spiffeId: toSpiffeId(entry.spiffe_id, 'spiffe_id'),
    parentId: toSpiffeId(entry.parent_id, 'parent_id'),
    selectors: toSelectors(entry.selectors),
    x509SvidTtlMs: toTtlMs(entry.x509_svid_ttl, 'x509_svid_ttl'),
    jwtSvidTtlMs: toTtlMs(entry.jwt_svid_ttl, 'jwt_svid_ttl'),
    dnsNames: toDnsNames(entry.dns_names),
    hint: toHint(entry.hint),
    admin: entry.admin,
    federatesWith: entry.federates_with.map((td) => TrustDomain.parse(td)),
    expiresAtMs: toExpiresAtMs(entry.expires_at),
  }
}

/** An entry as the API returns it (the same wire form the agent API uses). */
export function fromEntry(entry: RegistrationEntry): Entry {
  return entryToProto(entry)
}

/**
 * The selector match mode of a filter; `''` means `exact`.
 * @throws ERR_SELECTOR_INVALID for another value
 */
export function toMatchMode(text: string): SelectorMatchMode {
  if (text === '') return 'exact'
  if (!MATCH_MODES.has(text))
    throw new IdentityError('ERR_SELECTOR_INVALID', 'selector_match must be exact, subset, superset or any')
  return text as SelectorMatchMode
}

/**
 * An entry filter; empty fields filter nothing.
 * @throws ERR_ID_INVALID, ERR_SELECTOR_INVALID, ERR_TRUST_DOMAIN_INVALID
 */
export function toEntryFilter(filter: EntryFilterMessage | null | undefined): EntryFilter {
  if (filter === null || filter === undefined) return {}
  const mode = toMatchMode(filter.selector_match)
  return {
    ...(filter.by_spiffe_id === '' ? {} : { spiffeId: SpiffeId.parse(filter.by_spiffe_id) }),
    ...(filter.by_parent_id === '' ? {} : { parentId: SpiffeId.parse(filter.by_parent_id) }),
    ...(filter.by_selectors.length === 0
      ? {}
      : { selectors: { set: toSelectors(filter.by_selectors), mode } }),
    ...(filter.by_federates_with === ''
      ? {}
      : { federatesWith: { set: [TrustDomain.parse(filter.by_federates_with)], mode: 'any' as const } }),
    ...(filter.by_hint === '' ? {} : { hint: filter.by_hint }),
  }
}

/** The page a listing asks for; the datastore checks the size and decodes the (opaque) token. */
export function toPageRequest(request: { page_size: number; page_token: string }): PageRequest {
  return { pageSize: request.page_size, pageToken: request.page_token }
}

/** An attested agent as the API returns it. */
export function fromAgent(agent: AttestedAgent): Agent {
  return {
    spiffe_id: agent.spiffeId.toString(),
    attestation_type: agent.attestationType,
    x509_svid_serial_number: agent.serialHex,
    x509_svid_expires_at: Math.floor(agent.expiresAtMs / 1000),
    banned: agent.banned,
    selectors: agent.selectors.map((s) => ({ type: s.type, value: s.value })),
    created_at: Math.floor(agent.createdAtMs / 1000),
    updated_at: Math.floor(agent.updatedAtMs / 1000),
  }
}

/** The status of one batch item: OK, or the item's gRPC status and stable code. */
export function toItemStatus(error?: IdentityError): Status {
  if (error === undefined) return { code: grpcStatus.OK, message: '', error_code: '' }
  return { code: statusFor[error.code], message: error.message, error_code: error.code }
}
