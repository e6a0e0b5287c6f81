import { formatDurationMs } from '../../lib/core/duration.js'
import { IdentityError } from '../../lib/core/errors.js'
import type { EntryFields } from '../../lib/core/registration-entry.js'

/** The shortest SVID TTLs an entry may ask for (0, the server default, is always allowed). */
export interface SvidTtlFloors {
  readonly minX509SvidTtlMs: number
  readonly minJwtSvidTtlMs: number
}

/** The server's default floors: an X509-SVID re-signed more often than each minute, or a JWT-SVID
 * each half minute, is a mistake (a TTL of `1`, one second, is re-signed forever). */
export const DEFAULT_SVID_TTL_FLOORS: SvidTtlFloors = Object.freeze({
  minX509SvidTtlMs: 60_000,
  minJwtSvidTtlMs: 30_000,
})

/**
 * Selector types something in Tessera attests, so an entry with them can ever match: `unix`, the
 * agent's workload attestor (`unix:uid:1000`), and `spiffe_id`, the node selector an agent alias
 * matches on (`spiffe_id:spiffe://td/spire/agent/join_token/…`), and `tessera`, which only the agent's
 * delegated identity API adds (`tessera:launch:NAME`, a process `tessera launch --as NAME` started). Any other type, `uid:0` for
 * `unix:uid:0` for instance, would make an entry that never matches anything.
 */
export const ATTESTED_SELECTOR_TYPES: ReadonlySet<string> = new Set(['unix', 'spiffe_id', 'tessera'])

/**
 * Refuses an entry nothing could ever match or that would be re-signed endlessly: a selector of a
 * type no attestor produces, or a TTL under the server's floor.
 * @throws ERR_SELECTOR_INVALID, ERR_TTL_INVALID
 */
export function checkEntryAdmission(fields: EntryFields, floors: SvidTtlFloors): void {
  for (const selector of fields.selectors) {
    if (!ATTESTED_SELECTOR_TYPES.has(selector.type))
      throw new IdentityError(
        'ERR_SELECTOR_INVALID',
        `selector type "${selector.type}" is attested by nothing here (known: ${[...ATTESTED_SELECTOR_TYPES].join(', ')}; a workload's uid is unix:uid:<n>)`,
      )
  }
  checkTtl(fields.x509SvidTtlMs, floors.minX509SvidTtlMs, 'x509_svid_ttl')
  checkTtl(fields.jwtSvidTtlMs, floors.minJwtSvidTtlMs, 'jwt_svid_ttl')
}

function checkTtl(ttlMs: number, floorMs: number, field: string): void {
  if (ttlMs !== 0 && ttlMs < floorMs)
    throw new IdentityError(
      'ERR_TTL_INVALID',
      `${field} ${formatDurationMs(ttlMs)} is below the server's minimum of ${formatDurationMs(floorMs)} (0 means the server default)`,
    )
}
