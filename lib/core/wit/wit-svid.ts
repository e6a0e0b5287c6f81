/**
 * WIT-SVIDs (the SPIFFE WIT-SVID draft over draft-ietf-wimse-workload-creds): a JWT with header
 * `typ: wit+jwt` and a `kid` naming a `wit-svid` key of the trust domain's bundle, claims `sub` (the
 * SPIFFE ID), `exp`, `iat`, `jti` and `cnf.jwk`: the public key of the workload, whose private half
 * never leaves it. A WIT alone proves nothing; a Workload Proof Token signed with that key does.
 */
import { createPublicKey, type KeyObject, randomBytes } from 'node:crypto'
import { CompactSign, compactVerify } from 'jose'
import { exportPublicJwk, importPublicJwk } from '../bundle/jwk.js'
import type { JwtBundle } from '../bundle/jwt-bundle.js'
import { IdentityError, isIdentityError } from '../errors.js'
import { toLowS } from '../jwt/ecdsa-low-s.js'
import { algorithmsForKey, cryptoKeyFor, type JwtSvidAlgorithm } from '../jwt/jwt-svid.js'
import { SpiffeId } from '../spiffe-id.js'
import type { TrustDomain } from '../trust-domain.js'
import { decodeCompactJwt } from './compact-jwt.js'

/** The `typ` header of a WIT (draft-ietf-wimse-workload-creds). */
export const WIT_TYP = 'wit+jwt'

/** Clock skew tolerated on a WIT's `exp` and `iat` unless told otherwise: 30 seconds. */
export const DEFAULT_WIT_LEEWAY_MS = 30_000

/** Gives the WIT bundle (the `wit-svid` keys) of a trust domain. */
export interface WitBundleSource {
  /** The WIT authorities of exactly `td`, or undefined when that trust domain is not trusted. */
  getWitBundleForTrustDomain(td: TrustDomain): JwtBundle | undefined
}

/** A WIT-SVID whose structure was checked (and, from {@link validateWitSvid}, its signature and times). */
export interface WitSvid {
  readonly id: SpiffeId
  readonly expiresAtMs: number
  readonly issuedAtMs?: number
  /** The workload's public key from `cnf.jwk`: WPTs must verify with it. */
  readonly confirmationKey: KeyObject
  /** The JWS algorithm `cnf.jwk.alg` names for that key. */
  readonly confirmationAlg: JwtSvidAlgorithm
  readonly claims: Readonly<Record<string, unknown>>
  readonly token: string
}

/** What {@link mintWitSvid} needs. */
export interface MintWitSvidParams {
  readonly id: SpiffeId
  /** The workload's public key, bound in `cnf.jwk`. */
  readonly workloadKey: KeyObject
  /** The signing key and the `kid` of its public half in the bundle (`use: wit-svid`). */
  readonly key: Readonly<{ kid: string; privateKey: KeyObject }>
  readonly nowMs: number
  readonly ttlMs: number
  /** An upper bound for the expiry, such as the signing key's own notAfter. */
  readonly expiresAtCapMs?: number
}

const encoder = new TextEncoder()

/**
 * Signs a WIT-SVID: header `{alg, kid, typ: "wit+jwt"}`, claims `iss` (the trust domain's ID), `sub`,
 * `iat`, `exp` (min of `nowMs + ttlMs` and the cap, whole seconds), a random `jti` and
 * `cnf.jwk` (the workload key's public members with its `alg`).
 * @throws ERR_ID_INVALID, ERR_TTL_INVALID, ERR_KEY_MALFORMED, ERR_JWT_ALG_UNSUPPORTED
 */
export async function mintWitSvid(params: MintWitSvidParams): Promise<string> {
  const { id, key, workloadKey } = params
  if (!(id instanceof SpiffeId)) throw new IdentityError('ERR_ID_INVALID', 'the subject must be a SpiffeId')
  if (typeof key?.kid !== 'string' || key.kid.length === 0)
    throw new IdentityError('ERR_WIT_INVALID', 'the signing key needs a non-empty kid')
  const alg = firstAlgorithm(key.privateKey)
  const workloadAlg = firstAlgorithm(workloadKey)
  const iat = Math.floor(params.nowMs / 1000)
  const cap = params.expiresAtCapMs ?? Number.POSITIVE_INFINITY
  if (!Number.isFinite(params.nowMs) || !(params.ttlMs > 0))
    throw new IdentityError('ERR_TTL_INVALID', 'nowMs and a positive ttlMs are required')
  const exp = Math.floor(Math.min(params.nowMs + params.ttlMs, cap) / 1000)
  if (exp <= iat)
    throw new IdentityError('ERR_TTL_INVALID', 'the WIT-SVID would expire within its issue second')
  const claims = {
    iss: id.trustDomain.idString(),
    sub: id.toString(),
    iat,
    exp,
    jti: randomBytes(16).toString('base64url'),
    cnf: { jwk: { ...exportPublicJwk(workloadKey), alg: workloadAlg } },
  }
  const signingKey = await cryptoKeyFor(key.privateKey, alg)
  try {
    const token = await new CompactSign(encoder.encode(JSON.stringify(claims)))
      .setProtectedHeader({ alg, kid: key.kid, typ: WIT_TYP })
      .sign(signingKey)
    return toLowS(alg, token)
  } catch (err) {
    throw new IdentityError('ERR_KEY_MALFORMED', 'signing the WIT-SVID failed', { cause: err })
  }
}

/** @internal The preferred algorithm of a key. @throws ERR_KEY_MALFORMED, ERR_JWT_ALG_UNSUPPORTED */
export function firstAlgorithm(key: KeyObject): JwtSvidAlgorithm {
  if (key === undefined || key === null || typeof key !== 'object' || key.type === 'secret')
    throw new IdentityError('ERR_KEY_MALFORMED', 'an asymmetric KeyObject is required')
  const alg = algorithmsForKey(key)[0]
  if (alg === undefined)
    throw new IdentityError('ERR_JWT_ALG_UNSUPPORTED', 'no JWS algorithm fits this key type')
  return alg
}

/**
 * Decodes a WIT-SVID and checks its structure **without its signature or times** (for a workload
 * that inspects what it was handed): compact JWS, allowed `alg`, `typ` `wit+jwt`, a `kid`, a SPIFFE
 * ID in `sub`, a numeric `exp`, and a `cnf.jwk` public key whose `alg` fits it.
 * @throws ERR_JWT_MALFORMED, ERR_JWT_ALG_UNSUPPORTED, ERR_WIT_INVALID
 */
export function parseWitSvidInsecure(
  token: string,
): WitSvid & { readonly kid: string; readonly alg: JwtSvidAlgorithm } {
  const { header, claims } = decodeCompactJwt(token, 'WIT-SVID')
  if (header.typ !== WIT_TYP) throw invalid(`"typ" must be ${WIT_TYP}`)
  if (typeof header.kid !== 'string' || header.kid.length === 0) throw invalid('a WIT-SVID needs a "kid"')
  let id: SpiffeId
  try {
    id = SpiffeId.parse(String(claims['sub'] ?? ''))
  } catch (err) {
    throw invalid('"sub" is not a valid SPIFFE ID', err)
  }
  const exp = claims['exp']
  if (typeof exp !== 'number' || !Number.isFinite(exp)) throw invalid('"exp" is required')
  const iat = claims['iat']
  if (iat !== undefined && (typeof iat !== 'number' || !Number.isFinite(iat)))
    throw invalid('"iat" must be a NumericDate')
  const { confirmationKey, confirmationAlg } = confirmation(claims['cnf'])
  return Object.freeze({
    id,
    expiresAtMs: exp * 1000,
    ...(typeof iat === 'number' && { issuedAtMs: iat * 1000 }),
    confirmationKey,
    confirmationAlg,
    claims,
    token,
    kid: header.kid,
    alg: header.alg,
  })
}

function confirmation(cnf: unknown): { confirmationKey: KeyObject; confirmationAlg: JwtSvidAlgorithm } {
  const jwk = (cnf as { jwk?: unknown } | null | undefined)?.jwk
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) throw invalid('"cnf.jwk" is required')
  let key: KeyObject
  try {
    key = importPublicJwk(jwk as Record<string, unknown>)
  } catch (err) {
    throw invalid('"cnf.jwk" is not a usable public key', err)
  }
  const alg = (jwk as Record<string, unknown>)['alg']
  const fits = algorithmsForKey(key)
  if (typeof alg !== 'string' || !fits.includes(alg as JwtSvidAlgorithm))
    throw invalid('"cnf.jwk.alg" is missing or does not fit the key')
  return { confirmationKey: key, confirmationAlg: alg as JwtSvidAlgorithm }
}

/** When to validate, and how much clock skew to allow. */
export interface ValidateWitSvidOptions {
  readonly nowMs: number
  /** Skew tolerated on `exp` and `iat`; default {@link DEFAULT_WIT_LEEWAY_MS}. */
  readonly leewayMs?: number
}

/**
 * Validates a WIT-SVID against the WIT bundle of its own trust domain: structure (see
 * {@link parseWitSvidInsecure}), the `kid` in that bundle, an `alg` that fits the key, the low-S
 * signature, and `exp`/`iat` against `nowMs` with a leeway.
 * @throws ERR_JWT_MALFORMED, ERR_JWT_ALG_UNSUPPORTED, ERR_WIT_INVALID, ERR_BUNDLE_NOT_FOUND,
 *   ERR_JWT_KEY_NOT_FOUND, ERR_JWT_SIGNATURE_INVALID, ERR_JWT_EXPIRED, ERR_JWT_NOT_YET_VALID
 */
export async function validateWitSvid(
  token: string,
  bundles: WitBundleSource,
  opts: ValidateWitSvidOptions,
): Promise<WitSvid> {
  const leewayMs = opts.leewayMs ?? DEFAULT_WIT_LEEWAY_MS
  const parsed = parseWitSvidInsecure(token)
  const td = parsed.id.trustDomain
  const bundle = bundles.getWitBundleForTrustDomain(td)
  if (bundle === undefined || !bundle.trustDomain.equals(td))
    throw new IdentityError('ERR_BUNDLE_NOT_FOUND', `no WIT bundle for trust domain ${td.name}`)
  const authority = bundle.findAuthority(parsed.kid)
  if (authority === undefined)
    throw new IdentityError('ERR_JWT_KEY_NOT_FOUND', `no WIT authority "${parsed.kid}" for ${td.name}`)
  await verifyJws(token, parsed.alg, authority.key, 'WIT-SVID')
  if (parsed.expiresAtMs <= opts.nowMs - leewayMs)
    throw new IdentityError('ERR_JWT_EXPIRED', 'the WIT-SVID has expired')
  if (parsed.issuedAtMs !== undefined && parsed.issuedAtMs > opts.nowMs + leewayMs)
    throw new IdentityError('ERR_JWT_NOT_YET_VALID', 'the WIT-SVID was issued in the future (iat)')
  const { kid: _kid, alg: _alg, ...svid } = parsed
  return Object.freeze(svid)
}

/**
 * @internal Verifies a compact JWS with `key` under `alg` (which must fit the key), low-S for ECDSA.
 * @throws ERR_JWT_ALG_UNSUPPORTED, ERR_JWT_SIGNATURE_INVALID
 */
export async function verifyJws(
  token: string,
  alg: JwtSvidAlgorithm,
  key: KeyObject,
  what: string,
): Promise<void> {
  const pub = key.type === 'private' ? createPublicKey(key) : key
  if (!algorithmsForKey(pub).includes(alg))
    throw new IdentityError('ERR_JWT_ALG_UNSUPPORTED', `alg ${alg} does not fit the ${what} key`)
  if (toLowS(alg, token) !== token)
    throw new IdentityError('ERR_JWT_SIGNATURE_INVALID', `the ${what} signature is not in its low-S form`)
  try {
    await compactVerify(token, await cryptoKeyFor(pub, alg), { algorithms: [alg] })
  } catch (err) {
    if (isIdentityError(err)) throw err
    throw new IdentityError('ERR_JWT_SIGNATURE_INVALID', `the ${what} signature does not verify`, {
      cause: err,
    })
  }
}

function invalid(message: string, cause?: unknown): IdentityError {
  return new IdentityError('ERR_WIT_INVALID', message, { cause })
}

/**
 * Validated WIT-SVIDs by token, so that a verifier that sees one WIT on every request (each with a
 * fresh WPT) checks its signature and imports its `cnf.jwk` once. A hit is still checked against
 * the current bundle (the signing key must still be there, with the same key) and against the time;
 * at most `capacity` tokens are kept, the oldest dropped first.
 */
export class ValidatedWitCache {
  readonly #capacity: number
  readonly #byToken = new Map<string, { svid: WitSvid; kid: string; key: KeyObject }>()

  constructor(capacity = 1024) {
    this.#capacity = capacity
  }

  /** Like {@link validateWitSvid}, from the cache when the token was validated before. */
  async validate(token: string, bundles: WitBundleSource, opts: ValidateWitSvidOptions): Promise<WitSvid> {
    const hit = this.#byToken.get(token)
    if (hit !== undefined) {
      const authority = bundles.getWitBundleForTrustDomain(hit.svid.id.trustDomain)?.findAuthority(hit.kid)
      const leewayMs = opts.leewayMs ?? DEFAULT_WIT_LEEWAY_MS
      if (authority?.key.equals(hit.key) === true && hit.svid.expiresAtMs > opts.nowMs - leewayMs)
        return hit.svid
      this.#byToken.delete(token)
    }
    const svid = await validateWitSvid(token, bundles, opts)
    const { kid } = parseWitSvidInsecure(token)
    const key = bundles.getWitBundleForTrustDomain(svid.id.trustDomain)?.findAuthority(kid)?.key
    if (key !== undefined) {
      if (this.#byToken.size >= this.#capacity)
        this.#byToken.delete(this.#byToken.keys().next().value as string)
      this.#byToken.set(token, { svid, kid, key })
    }
    return svid
  }
}
