import { createHash } from 'node:crypto'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import type { TrustDomain } from '../../lib/core/trust-domain.js'

/** Path prefix of agents attested with a join token. */
export const JOIN_TOKEN_AGENT_PATH = '/tessera/agent/join_token'

/**
 * The public ID of a join token: a SHA-256 prefix, so the agent's SPIFFE ID, logs and audit records
 * name the token without revealing it (SPIRE puts the token itself in the path; we do not).
 */
export function joinTokenId(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex').slice(0, 32)
}

/** The SPIFFE ID an agent gets when it attests with `token`: `spiffe://<td>/tessera/agent/join_token/<token-id>`. */
export function agentIdForJoinToken(trustDomain: TrustDomain, token: string): SpiffeId {
  return SpiffeId.fromPath(trustDomain, `${JOIN_TOKEN_AGENT_PATH}/${joinTokenId(token)}`)
}

/** True when `id` is an agent ID of `trustDomain` (any attestation method). */
export function isAgentId(id: SpiffeId, trustDomain: TrustDomain): boolean {
  return id.memberOf(trustDomain) && id.path.startsWith('/tessera/agent/')
}
