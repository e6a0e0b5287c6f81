import type { RevocationsHandlers } from '../../common/gen/tessera/admin/v1/Revocations.js'
import type { RevokeSvidRequest__Output } from '../../common/gen/tessera/admin/v1/RevokeSvidRequest.js'
import type { AuditCaller } from '../../common/log/audit-log.js'
import { IdentityError } from '../../lib/core/errors.js'
import type { RegistrationEntry } from '../../lib/core/registration-entry.js'
import { revocationToWire } from '../../lib/workload/revocation-wire.js'
import type { EntryService } from '../registration/entry-service.js'
import type { RevocationService, RevokeRequest } from '../revocation/revocation-service.js'
import { toEntryId } from './convert.js'
import { type HandlerKit, unary } from './unary.js'

/** What the `Revocations` handlers need. */
export interface RevocationHandlerDeps extends HandlerKit {
  readonly revocations: RevocationService
  readonly entries: EntryService
}

/**
 * Revokes everything issued from `entry` so far: by its SPIFFE ID and issue time, since Tessera does
 * not record which entry a credential came from. Other entries that name the same SPIFFE ID lose
 * their current SVIDs too; their agents get new ones at once.
 */
export async function revokeEntry(
  revocations: RevocationService,
  entry: RegistrationEntry,
  caller: AuditCaller,
  reason: string,
): Promise<void> {
  await revocations.revoke(
    { kind: 'spiffe-id', value: entry.spiffeId.toString(), reason, entryId: entry.id },
    caller,
  )
}

async function requestOf(
  deps: RevocationHandlerDeps,
  req: RevokeSvidRequest__Output,
): Promise<RevokeRequest> {
  const reason = req.reason ?? ''
  switch (req.target) {
    case 'serial':
      return { kind: 'x509-serial', value: req.serial ?? '', reason }
    case 'jti':
      return { kind: 'jwt-id', value: req.jti ?? '', reason }
    case 'spiffe_id':
      return { kind: 'spiffe-id', value: req.spiffe_id ?? '', reason }
    case 'entry_id': {
      const entry = await deps.entries.fetch(toEntryId(req.entry_id ?? ''))
      return { kind: 'spiffe-id', value: entry.spiffeId.toString(), reason, entryId: entry.id }
    }
    default:
      throw new IdentityError(
        'ERR_REVOCATION_INVALID',
        'name what to revoke: a serial, a jti, a SPIFFE ID or an entry',
      )
  }
}

/** The `tessera.admin.v1.Revocations` service: revoke, list. */
export function createRevocationHandlers(deps: RevocationHandlerDeps): RevocationsHandlers {
  return {
    RevokeSvid: unary(deps, 'RevokeSvid', async (req: RevokeSvidRequest__Output, caller) => {
      const stored = await deps.revocations.revoke(await requestOf(deps, req), caller)
      return { revocation: revocationToWire(stored), revoked_by: stored.revokedBy }
    }),
    ListRevocations: unary(deps, 'ListRevocations', async () => ({
      revocations: deps.revocations.current().revocations.map(revocationToWire),
    })),
  }
}
