import type { JwtBundleSource } from '../core/bundle/bundle-source.js'
import { type Clock, systemClock } from '../core/clock.js'
import { IdentityError } from '../core/errors.js'
import type { JwtSvid } from '../core/jwt/jwt-svid.js'
import { validateJwtSvid } from '../core/jwt/jwt-svid-validate.js'
import type { RevocationListSource } from '../core/revocation.js'
import type { Authorizer } from './authorizer.js'

export type { JwtSvid } from '../core/jwt/jwt-svid.js'

/**
 * When to validate, and the clock skew to allow.
 * @example
 * const opts: VerifyJwtPeerOptions = { clock: systemClock, leewayMs: 5_000 }
 */
export interface VerifyJwtPeerOptions {
  /** The validation time (ms since the epoch); wins over `clock`. */
  readonly nowMs?: number
  /** Where the time comes from when `nowMs` is not given; default the system clock. */
  readonly clock?: Clock
  /** Skew tolerated on `exp`, `nbf` and `iat`; default 30 s (`DEFAULT_JWT_LEEWAY_MS`). */
  readonly leewayMs?: number
  /** Revoked credentials (a `RevocationSource`): a revoked token is refused with ERR_CREDENTIAL_REVOKED. */
  readonly revocations?: RevocationListSource
}

/**
 * Validates a caller's JWT-SVID **locally**, against the JWT bundle of the token's own trust domain
 * (never delegated to the agent's ValidateJWTSVID), then authorizes its SPIFFE ID: the Node equivalent
 * of go-spiffe's `jwtsvid.ParseAndValidate` followed by an authorizer (spec §5, §7.E). A key the bundle
 * stream drops stops validating at the source's next update.
 * @throws ERR_JWT_MALFORMED, ERR_JWT_ALG_UNSUPPORTED, ERR_JWT_INVALID, ERR_BUNDLE_NOT_FOUND,
 *   ERR_JWT_KEY_NOT_FOUND, ERR_JWT_SIGNATURE_INVALID, ERR_JWT_AUDIENCE_MISMATCH, ERR_JWT_NOT_YET_VALID,
 *   ERR_JWT_EXPIRED, ERR_KEY_MALFORMED, ERR_CREDENTIAL_REVOKED, ERR_PEER_UNAUTHORIZED
 * @example
 * const token = bearerTokenOf(req.headers.authorization)
 * const svid = await verifyJwtPeer(token, jwtSource, 'https://tool.local', authorizeMemberOf(td))
 * console.log(svid.id.toString())
 */
export async function verifyJwtPeer(
  token: string,
  bundles: JwtBundleSource,
  audience: string | ReadonlyArray<string>,
  authorizer: Authorizer,
  opts: VerifyJwtPeerOptions = {},
): Promise<JwtSvid> {
  const nowMs = opts.nowMs ?? (opts.clock ?? systemClock).nowMs()
  const leeway = opts.leewayMs === undefined ? {} : { leewayMs: opts.leewayMs }
  const revocations = opts.revocations === undefined ? {} : { revocations: opts.revocations }
  const svid = await validateJwtSvid(token, bundles, audience, { nowMs, ...leeway, ...revocations })
  authorizer(svid.id)
  return svid
}

/**
 * The longest `Authorization` header {@link bearerTokenOf} reads unless told otherwise: 8 KiB.
 * @example
 * bearerTokenOf(header, { maxLength: MAX_BEARER_HEADER_LENGTH / 2 })
 */
export const MAX_BEARER_HEADER_LENGTH = 8192

/** The scheme is case-insensitive (RFC 7235 §2.1); everything else is exact. */
const BEARER = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/i

/**
 * The token of an `Authorization: Bearer <token>` header, read strictly: the scheme `Bearer` (in any
 * case, RFC 7235), exactly one space, then a compact JWS (three base64url segments joined by dots) and
 * nothing else: no other whitespace, no padding, no second credential. Node keeps only the first of
 * repeated `Authorization` headers; a list of values (from another framework) is refused.
 * @throws ERR_NO_IDENTITY (no header, or an empty one), ERR_REQUEST_TOO_LARGE (longer than
 *   `maxLength`, default 8 KiB), ERR_REQUEST_INVALID (another scheme or a malformed token)
 * @example
 * const token = bearerTokenOf(req.headers.authorization) // 'eyJhbGciOi…'
 */
export function bearerTokenOf(
  authorization: string | ReadonlyArray<string> | undefined,
  opts: { readonly maxLength?: number } = {},
): string {
  if (authorization === undefined || authorization === '')
    throw new IdentityError('ERR_NO_IDENTITY', 'the request carries no Authorization header')
  if (typeof authorization !== 'string')
    throw new IdentityError('ERR_REQUEST_INVALID', 'the request carries more than one Authorization header')
  const maxLength = opts.maxLength ?? MAX_BEARER_HEADER_LENGTH
  if (authorization.length > maxLength)
    throw new IdentityError('ERR_REQUEST_TOO_LARGE', `the Authorization header is longer than ${maxLength}`)
  const match = BEARER.exec(authorization)
  if (!match) throw new IdentityError('ERR_REQUEST_INVALID', 'the Authorization header is not "Bearer <JWT>"')
  return match[1] as string
}
