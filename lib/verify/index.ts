/**
 * Verifying callers with `@tessera/spiffe`: authorizers (which SPIFFE IDs may call), X509-SVID chains
 * of TLS peers, and JWT-SVIDs, always against the bundle of the peer's own trust domain.
 * @example
 * import { authorizeMemberOf, bearerTokenOf, verifyJwtPeer } from '@tessera/spiffe/verify'
 * const svid = await verifyJwtPeer(bearerTokenOf(req.headers.authorization), jwtSource, 'my-tool',
 *   authorizeMemberOf(TrustDomain.parse('example.org')))
 * @packageDocumentation
 * @module @tessera/spiffe/verify
 */

export {
  DEFAULT_JWT_LEEWAY_MS,
  type ValidateJwtSvidOptions,
  validateJwtSvid,
} from '../core/jwt/jwt-svid-validate.js'
export {
  DEFAULT_TASK_LEEWAY_MS,
  parseTaskTokenInsecure,
  TASK_TOKEN_TYP,
  type TaskRequester,
  type TaskToken,
} from '../core/task/task-token.js'
export { ReplayCache } from '../core/wit/replay-cache.js'
export {
  DEFAULT_WIT_LEEWAY_MS,
  parseWitSvidInsecure,
  ValidatedWitCache,
  type ValidateWitSvidOptions,
  validateWitSvid,
  WIT_TYP,
  type WitBundleSource,
  type WitSvid,
} from '../core/wit/wit-svid.js'
export type { WitKey } from '../core/wit/workload-key.js'
export {
  DEFAULT_WPT_LEEWAY_MS,
  DEFAULT_WPT_MAX_LIFETIME_MS,
  DEFAULT_WPT_TTL_MS,
  proofTargetUri,
  type SignWptParams,
  signWpt,
  tokenHash,
  type VerifiedProof,
  type VerifyProofParams,
  verifyProof,
  WIT_HEADER,
  WPT_HEADER,
  WPT_TYP,
} from '../core/wit/wpt.js'
export {
  type Authorizer,
  authorizeAny,
  authorizeId,
  authorizeMatching,
  authorizeMemberOf,
  authorizeOneOf,
} from './authorizer.js'
export {
  bearerTokenOf,
  type JwtSvid,
  MAX_BEARER_HEADER_LENGTH,
  type VerifyJwtPeerOptions,
  verifyJwtPeer,
} from './jwt-peer.js'
export { type ValidateTaskTokenParams, validateTaskToken } from './task-token.js'
export {
  defaultX509PeerCache,
  type PeerCertificateLike,
  peerChainOf,
  type VerifiedX509Peer,
  type VerifyPeerCertificateOptions,
  type VerifyX509PeerOptions,
  verifyPeerCertificate,
  verifyX509Peer,
} from './x509-peer.js'
export {
  DEFAULT_X509_PEER_CACHE_SIZE,
  MAX_PEER_CHAIN_LENGTH,
  X509PeerCache,
  type X509PeerCacheStats,
} from './x509-peer-cache.js'
