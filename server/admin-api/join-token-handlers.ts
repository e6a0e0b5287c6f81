import type { JoinTokensHandlers } from '../../common/gen/tessera/admin/v1/JoinTokens.js'
import type { AuditCaller, AuditLog } from '../../common/log/audit-log.js'
import { IdentityError } from '../../lib/core/errors.js'
import type { SpiffeId } from '../../lib/core/spiffe-id.js'
import type { JoinTokenService } from '../registration/join-token-service.js'
import { toSpiffeId } from './convert.js'
import { refuseReservedAlias } from './entry-policy.js'
import { type HandlerKit, unary } from './unary.js'

/** What the `JoinTokens` handlers need. */
export interface JoinTokenHandlerDeps extends HandlerKit {
  readonly tokens: JoinTokenService
  readonly audit: AuditLog
}

/** Refuses (and audits, as the alias entry's failed creation) a reserved non-agent alias. */
function checkAlias(audit: AuditLog, aliasId: SpiffeId, caller: AuditCaller): void {
  try {
    refuseReservedAlias(aliasId)
  } catch (err) {
    audit.entryChanged({
      action: 'created',
      spiffeId: aliasId.toString(),
      caller,
      code: 'ERR_ENTRY_ID_RESERVED',
    })
    throw err
  }
}

/** Seconds on the wire (0 = server default) to milliseconds. @throws ERR_TTL_INVALID */
function toTokenTtlMs(seconds: number): number | undefined {
  if (!Number.isInteger(seconds) || seconds < 0)
    throw new IdentityError('ERR_TTL_INVALID', 'ttl must be whole seconds >= 0')
  return seconds === 0 ? undefined : seconds * 1000
}

/** The `tessera.admin.v1.JoinTokens` service. The token is in the response only, never logged. */
export function createJoinTokenHandlers(deps: JoinTokenHandlerDeps): JoinTokensHandlers {
  return {
    CreateJoinToken: unary(deps, 'CreateJoinToken', async (req, caller) => {
      const ttlMs = toTokenTtlMs(req.ttl)
      const aliasId =
        req.alias_spiffe_id === '' ? undefined : toSpiffeId(req.alias_spiffe_id, 'alias_spiffe_id')
      if (aliasId !== undefined) checkAlias(deps.audit, aliasId, caller)
      const created = await deps.tokens.create({ ttlMs, aliasId }, caller)
      return {
        token: created.token,
        expires_at: Math.floor(created.expiresAtMs / 1000),
        agent_spiffe_id: created.agentId.toString(),
      }
    }),
  }
}
