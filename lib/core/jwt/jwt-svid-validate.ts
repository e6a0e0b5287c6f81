import { compactVerify } from 'jose'
import type { JwtBundleSource } from '../bundle/bundle-source.js'
import type { JwtAuthority, JwtBundle } from '../bundle/jwt-bundle.js'
import { type ErrorCode, IdentityError, isIdentityError } from '../errors.js'
import { checkNotRevoked, type RevocableCredential, type RevocationListSource } from '../revocation.js'
import type { TrustDomain } from '../trust-domain.js'
import { isHighS } from './ecdsa-low-s.js'
import {
  algorithmsForKey,
  cryptoKeyFor,
  decodeJwtSvid,
  type JwtSvid,
  type JwtSvidAlgorithm,
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
  /**
   * Revoked credentials (an agent's list, `RevocationSource` in `@tessera/spiffe/workload`): a token
   * revoked by its `jti`, or issued to its `sub` before a revocation of that ID, is refused.
   */
  readonly revocations?: RevocationListSource
}

/**
 * Validates a JWT-SVID (spec §5, §7.E) and returns it as a record. In order: compact JWS with an
 * allowed `alg`; `typ` absent, `JWT` or `JOSE`; no `crit`; `sub` a valid SPIFFE ID; `aud` and
 * `exp` present; the JWT bundle of `sub`'s trust domain (and only that one); the key `kid` in it
 * (a token without `kid`, which JWT-SVID §2.2 allows, is tried against every authority of that
 * bundle whose key type fits its `alg`, and is accepted when one of them verifies it); an `alg` that
 * fits the key's type; an ECDSA signature in its low-S form (s ≤ n/2: the
 * high-S twin of a valid signature also verifies, a second spelling of the same token); the
 * signature (checked by jose); `aud` holding
 * at least one of `expectedAudience`; `nbf`, `exp` and `iat` against `nowMs` with a leeway that
 * defaults to 30 s. Errors from jose are kept as `cause`; only IdentityError is thrown.
 * @throws ERR_JWT_MALFORMED, ERR_JWT_ALG_UNSUPPORTED (also a kid-less token whose `alg` fits no
 *   authority), ERR_JWT_INVALID, ERR_BUNDLE_NOT_FOUND, ERR_JWT_KEY_NOT_FOUND (also a kid-less token
 *   against a bundle with no authority), ERR_JWT_SIGNATURE_INVALID (also a kid-less token that no
 *   authority verifies), ERR_JWT_AUDIENCE_MISMATCH (also when
 *   `expectedAudience` is empty), ERR_JWT_NOT_YET_VALID (`nbf` or `iat` in the future),
 *   ERR_JWT_EXPIRED, ERR_KEY_MALFORMED (the bundle's key cannot be imported), ERR_CREDENTIAL_REVOKED
 *   (with `opts.revocations`: revoked by `jti`, or by `sub` for tokens issued before the cutoff)
 */
export async function validateJwtSvid(
  token: string,
  bundles: JwtBundleSource,
  expectedAudience: string | ReadonlyArray<string>,
  opts: ValidateJwtSvidOptions,
): Promise<JwtSvid> {
  checkOptions(opts)
  const { svid } = await verifyJwtSvidSignature(token, bundles)
  checkJwtSvidClaims(svid, expectedAudience, opts)
  return svid
}

/**
 * The first half of {@link validateJwtSvid}: the token decoded and its signature checked against the
 * JWT bundle of its trust domain, which is returned with it (looked up before any await, so it is the
 * bundle the signature was checked against). @internal
 */
export async function verifyJwtSvidSignature(
  token: string,
  bundles: JwtBundleSource,
): Promise<{ readonly svid: JwtSvid; readonly bundle: JwtBundle }> {
  const { header, svid } = decodeJwtSvid(token)
  const bundle = findBundle(bundles, svid.id.trustDomain)
  if (header.kid === undefined) await verifyWithAnyAuthority(token, header, bundle)
  else await verifySignature(token, header, findAuthority(bundle, header.kid, header.alg))
  return { svid, bundle }
}

/**
 * The second half of {@link validateJwtSvid}, which depends on the time and the revocations and so
 * is repeated on every use of a token whose signature verified before: audience, times, revocation.
 * @internal
 */
export function checkJwtSvidClaims(
  svid: JwtSvid,
  expectedAudience: string | ReadonlyArray<string>,
  opts: ValidateJwtSvidOptions,
): void {
  const expected = typeof expectedAudience === 'string' ? [expectedAudience] : expectedAudience
  const { nowMs, leewayMs } = checkOptions(opts)
  checkAudience(svid.audience, expected)
  checkTimes(svid.claims, nowMs, leewayMs)
  checkNotRevoked(opts.revocations, jwtCredentialOf(svid))
}

/** The JWT bundle of `td` from `bundles`, or undefined (also when the source throws). @internal */
export function currentJwtBundle(bundles: JwtBundleSource, td: TrustDomain): JwtBundle | undefined {
  try {
    return bundles.getJwtBundleForTrustDomain(td)
  } catch {
    return undefined
  }
}

/** A validated token as a revocation list looks it up: `sub`, `jti` and `iat`. */
export function jwtCredentialOf(svid: JwtSvid): RevocableCredential {
  const jti = svid.claims['jti']
  return {
    kind: 'jwt',
    id: svid.id,
    jwtId: typeof jti === 'string' ? jti : undefined,
    issuedAtMs: svid.issuedAtMs,
  }
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

function findBundle(bundles: JwtBundleSource, td: TrustDomain): JwtBundle {
  const bundle = lookUpBundle(bundles, td)
  if (bundle === undefined || !bundle.trustDomain.equals(td)) {
    throw new IdentityError('ERR_BUNDLE_NOT_FOUND', `no JWT bundle for trust domain ${td.name}`)
  }
  return bundle
}

function findAuthority(bundle: JwtBundle, kid: string, alg: JwtSvidAlgorithm): JwtAuthority {
  const td = bundle.trustDomain.name
  const authority = bundle.findAuthority(kid)
  if (authority === undefined) {
    throw new IdentityError('ERR_JWT_KEY_NOT_FOUND', `no JWT authority "${kid}" for ${td}`)
  }
  if (!algorithmsForKey(authority.key).includes(alg)) {
    throw new IdentityError('ERR_JWT_ALG_UNSUPPORTED', `alg ${alg} does not fit the key "${kid}"`)
  }
  return authority
}

/**
 * A token without `kid` (JWT-SVID §2.2): each authority of the bundle whose key fits `alg` is tried
 * in turn; the first that verifies the signature wins. Only a failed signature (or a key jose cannot
 * use) moves on to the next authority; anything else about the token is final.
 */
async function verifyWithAnyAuthority(
  token: string,
  header: JwtSvidHeader,
  bundle: JwtBundle,
): Promise<void> {
  const td = bundle.trustDomain.name
  if (bundle.isEmpty) throw new IdentityError('ERR_JWT_KEY_NOT_FOUND', `no JWT authority for ${td}`)
  const candidates = bundle.authorities.filter((a) => algorithmsForKey(a.key).includes(header.alg))
  if (candidates.length === 0) {
    throw new IdentityError('ERR_JWT_ALG_UNSUPPORTED', `alg ${header.alg} fits no JWT authority of ${td}`)
  }
  const failures: IdentityError[] = []
  for (const authority of candidates) {
    try {
      await verifySignature(token, header, authority)
      return
    } catch (err) {
      if (!isIdentityError(err, 'ERR_JWT_SIGNATURE_INVALID') && !isIdentityError(err, 'ERR_KEY_MALFORMED'))
        throw err
      failures.push(err)
    }
  }
  throw new IdentityError(
    'ERR_JWT_SIGNATURE_INVALID',
    `no JWT authority of ${td} verifies the kid-less token`,
    {
      cause: new AggregateError(failures, 'each authority refused the signature'),
    },
  )
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
