/**
 * The SPIFFE core of `@tessera/spiffe`: identities, trust domains, SVID and bundle types, and the
 * typed errors every part of the package throws. Pure: no sockets, no files, no logging.
 *
 * The other entry points: `@tessera/spiffe/workload` (fetch SVIDs and bundles from the Workload API),
 * `@tessera/spiffe/verify` (authorizers, peer and JWT-SVID verification), `@tessera/spiffe/tls`
 * (mTLS servers and clients), `@tessera/spiffe/guard` (per-request HTTP guard).
 * @example
 * import { SpiffeId, TrustDomain } from '@tessera/spiffe'
 * const id = SpiffeId.parse('spiffe://example.org/tools/search')
 * id.memberOf(TrustDomain.parse('example.org')) // true
 * @packageDocumentation
 * @module @tessera/spiffe
 */

export type { JwtBundleSource, X509BundleSource } from './core/bundle/bundle-source.js'
export { BundleSet, type BundleSetInit } from './core/bundle/bundle-source.js'
export type { EcCurveName, PublicJwk } from './core/bundle/jwk.js'
export { type JwtAuthority, JwtBundle, type JwtBundleJwk } from './core/bundle/jwt-bundle.js'
export {
  type IgnoredBundleKey,
  SpiffeBundle,
  type SpiffeBundleParseResult,
  type SpiffeBundleParts,
} from './core/bundle/spiffe-bundle.js'
export { marshalBundleMap, parseBundleMap } from './core/bundle/spiffe-bundle-map.js'
export { X509Bundle } from './core/bundle/x509-bundle.js'
export { type Clock, ManualClock, systemClock } from './core/clock.js'
export { ConfigError } from './core/config-error.js'
export { type ErrorCode, IdentityError, isIdentityError } from './core/errors.js'
export {
  type InsecureJwtSvid,
  JWT_SVID_ALGORITHMS,
  type JwtSvid,
  type JwtSvidAlgorithm,
  type JwtSvidHeader,
  parseJwtSvidInsecure,
} from './core/jwt/jwt-svid.js'
export {
  normalizeSerialHex,
  type RevocableCredential,
  type Revocation,
  type RevocationKind,
  RevocationList,
  type RevocationListSource,
  X509_NOT_BEFORE_BACKDATE_MS,
} from './core/revocation.js'
export { SpiffeId } from './core/spiffe-id.js'
export { TrustDomain } from './core/trust-domain.js'
export { type Certificate, KeyUsageBit } from './core/x509/certificate.js'
export type { VerifiedX509Peer } from './core/x509/verify-chain.js'
export { parseX509Svid, parseX509SvidPem, type X509Svid } from './core/x509/x509-svid.js'
