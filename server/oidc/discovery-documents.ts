import type { JwtBundle } from '../../lib/core/bundle/jwt-bundle.js'
import { algorithmsForKey } from '../../lib/core/jwt/jwt-svid.js'

/** Where the key set is served, under the issuer's path (SPIRE's discovery provider uses `/keys` too). */
export const KEYS_PATH = '/keys'
/** Where the provider metadata is served, under the issuer's path (OpenID Connect Discovery 1.0 §4). */
export const CONFIGURATION_PATH = '/.well-known/openid-configuration'

/** One public key as a relying party reads it: `use: sig` and its algorithm, never private members. */
export type PublicSigningJwk = Readonly<Record<string, string>>

/**
 * The OpenID Provider metadata of the trust domain: `issuer` and `jwks_uri`, and the three members
 * Discovery 1.0 requires, which AWS IAM, GCP workload identity federation and Vault's `jwt` auth
 * read. There is no authorization endpoint: nothing here signs users in; JWT-SVIDs come from the
 * Workload API. The algorithms are those of the keys published now (ES256 for Tessera's P-256 keys).
 */
export function discoveryDocument(issuer: string, jwks: { keys: ReadonlyArray<PublicSigningJwk> }) {
  const algorithms = [...new Set(jwks.keys.map((k) => k['alg']).filter((a) => a !== undefined))]
  return {
    issuer,
    jwks_uri: `${issuer}${KEYS_PATH}`,
    response_types_supported: ['id_token'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: algorithms.length > 0 ? algorithms : ['ES256'],
    claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti'],
  }
}

/**
 * The JWT-SVID authorities of the trust domain's own bundle as a JWKS for relying parties: every
 * live generation (a prepared key appears before it signs; a retired one stays until its
 * generation expires, and no token it signed outlives that). WIT and X.509 authorities are never
 * in it: this is built from the JWT bundle alone.
 */
export function publicJwks(bundle: JwtBundle): { keys: PublicSigningJwk[] } {
  return {
    keys: bundle.authorities.map((a) => {
      const alg = algorithmsForKey(a.key)[0]
      const { kty, ...members } = a.jwk
      return { kty, kid: a.kid, use: 'sig', ...(alg === undefined ? {} : { alg }), ...members }
    }),
  }
}
