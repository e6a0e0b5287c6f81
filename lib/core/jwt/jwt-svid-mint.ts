import { KeyObject, randomBytes } from 'node:crypto'
import { CompactSign } from 'jose'
import { IdentityError } from '../errors.js'
import { SpiffeId } from '../spiffe-id.js'
import { toLowS } from './ecdsa-low-s.js'
import { algorithmsForKey, cryptoKeyFor } from './jwt-svid.js'

/** What {@link mintJwtSvid} needs. */
export interface MintJwtSvidParams {
  /** The subject; any valid SPIFFE ID, the trust domain's own ID included. */
  readonly id: SpiffeId
  /** The audiences, written to `aud` exactly as given (as an array). At least one, none empty. */
  readonly audience: ReadonlyArray<string>
  /** The signing key and the `kid` under which its public half is in the JWT bundle. */
  readonly key: Readonly<{ kid: string; privateKey: KeyObject }>
  /** The issue time (ms since the epoch); `iat` is its whole second. */
  readonly nowMs: number
  /** The requested lifetime. */
  readonly ttlMs: number
  /** An upper bound for the expiry, such as the signing key's own notAfter. */
  readonly expiresAtCapMs?: number
  /** The `jti` claim, by which this one token can be revoked; default 128 random bits, base64url. */
  readonly jwtId?: string
  /**
   * The `iss` claim, when the trust domain publishes OIDC discovery: cloud STS services accept a
   * token only when `iss` is the discovery issuer URL. Absent: no `iss` (the SPIFFE default).
   */
  readonly issuer?: string
}

const encoder = new TextEncoder()

/**
 * Signs a JWT-SVID: header exactly `{alg, kid, typ: "JWT"}` (ES256 for P-256, ES384 for P-384,
 * ES512 for P-521, RS256 for RSA) and claims `sub`, `aud`, `exp`, `iat` with integer times and a
 * `jti` (random unless given: a revocation can name this one token), `iss` when an issuer is given, where
 * `exp` is `min(nowMs + ttlMs, expiresAtCapMs)` rounded down to the second.
 * The key's WebCrypto form is imported once and cached per `KeyObject`. ECDSA signatures are
 * always in their low-S form (see `ecdsa-low-s.ts`): verifiers refuse the other one.
 * @throws ERR_ID_INVALID when `id` is not a SpiffeId; ERR_JWT_INVALID on an empty audience list,
 *   an empty audience or an empty `kid`; ERR_TTL_INVALID when the token would not outlive its
 *   issue second; ERR_KEY_MALFORMED when the key is not a private KeyObject;
 *   ERR_JWT_ALG_UNSUPPORTED for key types with no allowed algorithm (Ed25519, for instance)
 */
export async function mintJwtSvid(params: MintJwtSvidParams): Promise<string> {
  const { id, audience, key } = params
  if (!(id instanceof SpiffeId)) throw new IdentityError('ERR_ID_INVALID', 'the subject must be a SpiffeId')
  checkAudience(audience)
  if (typeof key?.kid !== 'string' || key.kid.length === 0) {
    throw new IdentityError('ERR_JWT_INVALID', 'the signing key needs a non-empty kid')
  }
  const alg = signingAlgorithm(key.privateKey)
  const { iat, exp } = lifetime(params)
  const jti = params.jwtId ?? randomBytes(16).toString('base64url')
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256)
    throw new IdentityError('ERR_JWT_INVALID', 'a jti must be 1 to 256 characters')
  const issuer = params.issuer
  if (issuer !== undefined && (typeof issuer !== 'string' || issuer.length === 0))
    throw new IdentityError('ERR_JWT_INVALID', 'an issuer must be a non-empty string')
  const claims = {
    ...(issuer === undefined ? {} : { iss: issuer }),
    sub: id.toString(),
    aud: [...audience],
    exp,
    iat,
    jti,
  }
  const signingKey = await cryptoKeyFor(key.privateKey, alg)
  try {
    const token = await new CompactSign(encoder.encode(JSON.stringify(claims)))
      .setProtectedHeader({ alg, kid: key.kid, typ: 'JWT' })
      .sign(signingKey)
    return toLowS(alg, token)
  } catch (err) {
    throw new IdentityError('ERR_KEY_MALFORMED', 'signing the JWT-SVID failed', { cause: err })
  }
}

function checkAudience(audience: ReadonlyArray<string>): void {
  if (!Array.isArray(audience) || audience.length === 0) {
    throw new IdentityError('ERR_JWT_INVALID', 'a JWT-SVID needs at least one audience')
  }
  for (const a of audience) {
    if (typeof a !== 'string' || a.length === 0) {
      throw new IdentityError('ERR_JWT_INVALID', 'every audience must be a non-empty string')
    }
  }
}

function signingAlgorithm(privateKey: KeyObject) {
  if (!(privateKey instanceof KeyObject) || privateKey.type !== 'private') {
    throw new IdentityError('ERR_KEY_MALFORMED', 'the signing key must be a private KeyObject')
  }
  const alg = algorithmsForKey(privateKey)[0]
  if (alg === undefined) {
    throw new IdentityError('ERR_JWT_ALG_UNSUPPORTED', 'no JWT-SVID algorithm fits this key type')
  }
  return alg
}

function lifetime(params: MintJwtSvidParams): { iat: number; exp: number } {
  const { nowMs, ttlMs, expiresAtCapMs } = params
  if (!Number.isFinite(nowMs) || !Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new IdentityError('ERR_TTL_INVALID', 'nowMs and a positive ttlMs are required')
  }
  if (expiresAtCapMs !== undefined && Number.isNaN(expiresAtCapMs)) {
    throw new IdentityError('ERR_TTL_INVALID', 'expiresAtCapMs must be a number')
  }
  const iat = Math.floor(nowMs / 1000)
  const exp = Math.floor(Math.min(nowMs + ttlMs, expiresAtCapMs ?? Number.POSITIVE_INFINITY) / 1000)
  if (exp <= iat)
    throw new IdentityError('ERR_TTL_INVALID', 'the JWT-SVID would expire within its issue second')
  return { iat, exp }
}
