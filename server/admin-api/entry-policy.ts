import { IdentityError } from '../../lib/core/errors.js'
import { type InterpreterHashes, interpreterWarnings } from '../../lib/core/interpreter-pins.js'
import type { EntryFields } from '../../lib/core/registration-entry.js'
import type { SpiffeId } from '../../lib/core/spiffe-id.js'
import { findInterpreterHashes } from '../registration/interpreter-hashes.js'

/** Tessera's own identities live below this path: the server, agents, agent aliases. */
export const RESERVED_PATH = '/tessera'

/** True when `id` is Tessera's own (`spiffe://<td>/tessera` or below). */
export function isReservedId(id: SpiffeId): boolean {
  return id.path === RESERVED_PATH || id.path.startsWith(`${RESERVED_PATH}/`)
}

/**
 * Refuses an entry for one of Tessera's own identities: a workload holding `…/tessera/server` could
 * present itself as the server to a new agent (and take its join token); one holding an agent's ID
 * could act as that agent.
 * @throws ERR_ENTRY_ID_RESERVED
 */
export function refuseReservedId(fields: EntryFields): void {
  if (isReservedId(fields.spiffeId))
    throw new IdentityError(
      'ERR_ENTRY_ID_RESERVED',
      `${fields.spiffeId} is reserved for Tessera's server and agents (spiffe://<td>${RESERVED_PATH}/...)`,
    )
}

/**
 * Refuses a join-token alias among Tessera's own IDs other than an agent's (`…/tessera/agent/…`): the
 * alias entry's ID is one the agent may have signed, so `…/tessera/server` would let that agent's
 * host present itself as the server.
 * @throws ERR_ENTRY_ID_RESERVED
 */
export function refuseReservedAlias(aliasId: SpiffeId): void {
  if (isReservedId(aliasId) && !aliasId.path.startsWith(`${RESERVED_PATH}/agent/`))
    throw new IdentityError(
      'ERR_ENTRY_ID_RESERVED',
      `${aliasId} is reserved; an agent alias below ${RESERVED_PATH} must be below ${RESERVED_PATH}/agent/`,
    )
}

let hostHashes: Promise<InterpreterHashes> | undefined

/**
 * The sha256 of this host's interpreters, found once per process, on the first entry write that pins
 * a hash (that write waits for the scan, well under a second here). A failed scan counts as none found.
 */
export function hostInterpreterHashes(): Promise<InterpreterHashes> {
  hostHashes ??= findInterpreterHashes().catch(() => new Map<string, string>())
  return hostHashes
}

/** The warnings an admin gets with an entry write (today: an interpreter-only binary pin). */
export async function entryWarnings(fields: EntryFields): Promise<string[]> {
  const pinsHash = fields.selectors.some((s) => s.type === 'unix' && s.value.startsWith('sha256:'))
  return interpreterWarnings(fields.selectors, pinsHash ? await hostInterpreterHashes() : new Map())
}
