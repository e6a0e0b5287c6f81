import { IdentityError } from '../core/errors.js'
import type { SpiffeId } from '../core/spiffe-id.js'
import type { TrustDomain } from '../core/trust-domain.js'

/**
 * Decides whether an authenticated peer may proceed: returns normally to allow, throws
 * `ERR_PEER_UNAUTHORIZED` to refuse. Authorizers run after the peer's SVID has been verified.
 * @example
 * const onlyGateway: Authorizer = authorizeId(SpiffeId.parse('spiffe://example.org/gateway'))
 */
export type Authorizer = (id: SpiffeId) => void

function refuse(id: SpiffeId, why: string): never {
  throw new IdentityError('ERR_PEER_UNAUTHORIZED', `${id.toString()} ${why}`)
}

/**
 * Allows any authenticated peer. Use only where every SVID of every trusted trust domain may call.
 * @example
 * const anyone = authorizeAny()
 */
export function authorizeAny(): Authorizer {
  return () => undefined
}

/**
 * Allows exactly one SPIFFE ID.
 * @throws ERR_PEER_UNAUTHORIZED (from the returned authorizer)
 * @example
 * authorizeId(SpiffeId.parse('spiffe://example.org/agent/claude'))
 */
export function authorizeId(allowed: SpiffeId): Authorizer {
  return (id) => {
    if (!id.equals(allowed)) refuse(id, 'is not the allowed SPIFFE ID')
  }
}

/**
 * Allows any of the given SPIFFE IDs.
 * @throws ERR_PEER_UNAUTHORIZED (from the returned authorizer)
 * @example
 * authorizeOneOf(SpiffeId.parse('spiffe://example.org/a'), SpiffeId.parse('spiffe://example.org/b'))
 */
export function authorizeOneOf(...allowed: SpiffeId[]): Authorizer {
  const set = new Set(allowed.map((a) => a.toString()))
  return (id) => {
    if (!set.has(id.toString())) refuse(id, 'is not one of the allowed SPIFFE IDs')
  }
}

/**
 * Allows every SPIFFE ID of a trust domain.
 * @throws ERR_PEER_UNAUTHORIZED (from the returned authorizer)
 * @example
 * authorizeMemberOf(TrustDomain.parse('example.org'))
 */
export function authorizeMemberOf(trustDomain: TrustDomain): Authorizer {
  return (id) => {
    if (!id.memberOf(trustDomain)) refuse(id, `is not a member of ${trustDomain.name}`)
  }
}

/**
 * Allows the IDs a predicate accepts (a custom rule).
 * @throws ERR_PEER_UNAUTHORIZED (from the returned authorizer)
 * @example
 * authorizeMatching((id) => id.path.startsWith('/agents/'))
 */
export function authorizeMatching(predicate: (id: SpiffeId) => boolean): Authorizer {
  return (id) => {
    if (!predicate(id)) refuse(id, 'is refused by the authorization rule')
  }
}
