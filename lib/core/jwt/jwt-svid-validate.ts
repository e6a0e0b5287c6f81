import { compactVerify } from 'jose'
import type { JwtBundleSource } from '../bundle/bundle-source.js'
import type { JwtAuthority, JwtBundle } from '../bundle/jwt-bundle.js'
import { type ErrorCode, IdentityError, isIdentityError } from '../errors.js'
import type { TrustDomain } from '../trust-domain.js'
import { isHighS } from './ecdsa-low-s.js'
import {
  algorithmsForKey,
  cryptoKeyFor,
  decodeJwtSvid,
  type JwtSvid,
  type JwtSvidHeader,
} from './jwt-svid.js'

/** Clock skew tolerated on `exp`, `nbf` and `iat` unless told otherwise: 30 seconds. */
export const DEFAULT_JWT_LEEWAY_MS = 30_000

/** When to validate, and how much clock skew to allow. */
export interface ValidateJwtSvidOptions {
  /** The validation time, ms since the epoch. */
  readonly nowMs: number
  /** Skew tolerated on `exp`, `nbf` and `iat`; defaults to {@link DEFAULT_JWT_LEEWAY_MS} (30 s). */
  readonly leewayMs?: number
}

/**
 * Validates a JWT-SVID (spec §5, §7.E) and returns it as a record. In order: compact JWS with an
 * allowed `alg`; `typ` absent, `JWT` or `JOSE`; no `crit`; `sub` a valid SPIFFE ID; `aud` and
 * `exp` present; a `kid`; the JWT bundle of `sub`'s trust domain (and only that one); the key
 * `kid` in it; an `alg` that fits the key's type; an ECDSA signature in its low-S form (s ≤ n/2: the
 * high-S twin of a valid signature also verifies, a second spelling of the same token); the
 * signature (checked by jose); `aud` holding
 * at least one of `expectedAudience`; `nbf`, `exp` and `iat` against `nowMs` with a leeway that
 * defaults to 30 s. Errors from jose are kept as `cause`; only IdentityError is thrown.
 * @throws ERR_JWT_MALFORMED, ERR_JWT_ALG_UNSUPPORTED, ERR_JWT_INVALID, ERR_BUNDLE_NOT_FOUND,
 *   ERR_JWT_KEY_NOT_FOUND, ERR_JWT_SIGNATURE_INVALID, ERR_JWT_AUDIENCE_MISMATCH (also when
 *   `expectedAudience` is empty), ERR_JWT_NOT_YET_VALID (`nbf` or `iat` in the future),
 *   ERR_JWT_EXPIRED, ERR_KEY_MALFORMED (the bundle's key cannot be imported)
 */
export async function validateJwtSvid(
  token: string,
  bundles: JwtBundleSource,
  expectedAudience: string | ReadonlyArray<string>,
  opts: ValidateJwtSvidOptions,
): Promise<JwtSvid> {
  const expected = typeof expectedAudience === 'string' ? [expectedAudience] : expectedAudience
  const { nowMs, leewayMs } = checkOptions(opts)
  const { header, svid } = decodeJwtSvid(token)
  const authority = findAuthority(bundles, svid, header)
  await verifySignature(token, header, authority)
  checkAudience(svid.audience, expected)
  checkTimes(svid.claims, nowMs, leewayMs)
  return svid
}

function checkOptions(opts: ValidateJwtSvidOptions): { nowMs: number; leewayMs: number } {
  const nowMs = opts?.nowMs
  const leewayMs = opts?.leewayMs ?? DEFAULT_JWT_LEEWAY_MS
  if (typeof nowMs !== 'number' || !Number.isFinite(nowMs)) {
    throw new IdentityError('ERR_JWT_INVALID', 'validation needs a finite nowMs')
  }
  if (typeof leewayMs !== 'number' || !(leewayMs >= 0) || !Number.isFinite(leewayMs)) {
    throw new IdentityError('ERR_JWT_INVALID', 'leewayMs must be a finite number >= 0')
  }
  return { nowMs, leewayMs }
}

function findAuthority(bundles: JwtBundleSource, svid: JwtSvid, header: JwtSvidHeader): JwtAuthority {
  if (header.kid === undefined) throw new IdentityError('ERR_JWT_INVALID', 'a JWT-SVID needs a "kid" header')
  const td = svid.id.trustDomain
  const bundle = lookUpBundle(bundles, td)
  if (bundle === undefined || !bundle.trustDomain.equals(td)) {
    throw new IdentityError('ERR_BUNDLE_NOT_FOUND', `no JWT bundle for trust domain ${td.name}`)
  }
  const authority = bundle.findAuthority(header.kid)
  if (authority === undefined) {
    throw new IdentityError('ERR_JWT_KEY_NOT_FOUND', `no JWT authority "${header.kid}" for ${td.name}`)
  }
  if (!algorithmsForKey(authority.key).includes(header.alg)) {
    throw new IdentityError(
      'ERR_JWT_ALG_UNSUPPORTED',
      `alg ${header.alg} does not fit the key "${header.kid}"`,
    )
  }
  return authority
}

/** The source's answer; a source that throws something other than an IdentityError finds nothing. */
function lookUpBundle(bundles: JwtBundleSource, td: TrustDomain): JwtBundle | undefined {
  try {
    return bundles.getJwtBundleForTrustDomain(td)
  } catch (err) {
    if (isIdentityError(err)) throw err
    throw new IdentityError('ERR_BUNDLE_NOT_FOUND', `the JWT bundle of ${td.name} could not be read`, {
      cause: err,
    })
  }
}

/** jose error codes and what they mean here; anything else is a failed signature. */
const JOSE_CODES: Readonly<Record<string, ErrorCode>> = {
  ERR_JWS_INVALID: 'ERR_JWT_MALFORMED',
  ERR_JOSE_ALG_NOT_ALLOWED: 'ERR_JWT_ALG_UNSUPPORTED',
  ERR_JOSE_NOT_SUPPORTED: 'ERR_JWT_ALG_UNSUPPORTED',
}

async function verifySignature(token: string, header: JwtSvidHeader, authority: JwtAuthority): Promise<void> {
  if (isHighS(header.alg, Buffer.from(token.slice(token.lastIndexOf('.') + 1), 'base64url')))
    throw new IdentityError('ERR_JWT_SIGNATURE_INVALID', 'the ECDSA signature is not in its low-S form')
  const key = await cryptoKeyFor(authority.key, header.alg)
  try {
    await compactVerify(token, key, { algorithms: [header.alg] })
  } catch (err) {
    const joseCode = (err as { code?: unknown } | null)?.code
    const code =
      (typeof joseCode === 'string' ? JOSE_CODES[joseCode] : undefined) ?? 'ERR_JWT_SIGNATURE_INVALID'
    throw new IdentityError(code, 'the JWT-SVID signature does not verify', { cause: err })
  }
}

function checkAudience(audience: ReadonlyArray<string>, expected: ReadonlyArray<string>): void {
  if (!Array.isArray(expected) || !expected.some((e) => typeof e === 'string' && audience.includes(e))) {
    throw new IdentityError('ERR_JWT_AUDIENCE_MISMATCH', 'the token is not meant for the expected audience')
  }
}

function checkTimes(claims: Readonly<Record<string, unknown>>, nowMs: number, leewayMs: number): void {
  const { nbf, exp, iat } = claims as { nbf?: number; exp: number; iat?: number }
  if (nbf !== undefined && nbf * 1000 > nowMs + leewayMs) {
    throw new IdentityError('ERR_JWT_NOT_YET_VALID', 'the JWT-SVID is not valid yet (nbf)')
  }
  if (exp * 1000 <= nowMs - leewayMs) throw new IdentityError('ERR_JWT_EXPIRED', 'the JWT-SVID has expired')
  if (iat !== undefined && iat * 1000 > nowMs + leewayMs) {
    throw new IdentityError('ERR_JWT_NOT_YET_VALID', 'the JWT-SVID was issued in the future (iat)')
  }
}
