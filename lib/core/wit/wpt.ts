/**
 * Workload Proof Tokens (draft-ietf-wimse-wpt): a JWT with header `typ: wpt+jwt`, signed per request
 * with the key a WIT's `cnf.jwk` names, whose claims bind it to that request: `aud` (the target URI,
 * without query and fragment), a short `exp`, a unique `jti`, `wth` (hash of the WIT) and, when the
 * request carries them, `tth` (hash of a transaction/task token) and `ath` (hash of an access token).
 * Tessera also writes `htm` (the HTTP method, as DPoP names it) and checks it when present.
 */
import { createHash, randomBytes } from 'node:crypto'
import { CompactSign } from 'jose'
import { IdentityError, isIdentityError } from '../errors.js'
import { toLowS } from '../jwt/ecdsa-low-s.js'
import { cryptoKeyFor } from '../jwt/jwt-svid.js'
import { decodeCompactJwt } from './compact-jwt.js'
import type { ReplayCache } from './replay-cache.js'
import {
  type ValidatedWitCache,
  validateWitSvid,
  verifyJws,
  type WitBundleSource,
  type WitSvid,
} from './wit-svid.js'
import type { WitKey } from './workload-key.js'

/** The `typ` header of a WPT. */
export const WPT_TYP = 'wpt+jwt'
/** The HTTP header that carries the WIT. */
export const WIT_HEADER = 'workload-identity-token'
/** The HTTP header that carries the WPT. */
export const WPT_HEADER = 'workload-proof-token'
/** Lifetime of a WPT unless told otherwise: 30 seconds. */
export const DEFAULT_WPT_TTL_MS = 30_000
/** The longest lifetime a verifier accepts unless told otherwise: 5 minutes. */
export const DEFAULT_WPT_MAX_LIFETIME_MS = 300_000
/** Clock skew tolerated on a WPT's `exp` and `iat` unless told otherwise: 5 seconds. */
export const DEFAULT_WPT_LEEWAY_MS = 5_000
const MAX_JTI_LENGTH = 256

/** base64url SHA-256 of a token's ASCII text: the `wth`, `tth` and `ath` values. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'ascii').digest('base64url')
}

/**
 * The target URI a WPT's `aud` names: scheme, host, port (when not the default) and path, without
 * query and fragment; dot segments and percent-encoding normalised as WHATWG URL does; `ws:`/`wss:`
 * (whose opening request is that HTTP request) read as `http:`/`https:`.
 * @throws ERR_REQUEST_INVALID for a URL that does not parse or is not http(s)
 */
export function proofTargetUri(url: string | URL): string {
  let u: URL
  try {
    u = new URL(url)
  } catch (err) {
    throw new IdentityError('ERR_REQUEST_INVALID', 'the request URL does not parse', { cause: err })
  }
  // A WebSocket opens with an HTTP request to the same URI: ws and wss name it as http and https.
  const scheme = { 'http:': 'http:', 'https:': 'https:', 'ws:': 'http:', 'wss:': 'https:' }[u.protocol]
  if (scheme === undefined)
    throw new IdentityError('ERR_REQUEST_INVALID', 'a proof binds an http(s) or ws(s) URL')
  return `${new URL(`${scheme}//${u.host}`).origin}${u.pathname}`
}

/** What {@link signWpt} needs. */
export interface SignWptParams {
  /** The WIT this proof goes with. */
  readonly wit: string
  /** The WIT's private key (from `wit_svid_key`). */
  readonly key: WitKey
  /** The request URL; `aud` is its {@link proofTargetUri}. */
  readonly url: string | URL
  /** The HTTP method, written as `htm`. */
  readonly method?: string
  readonly nowMs: number
  /** Default {@link DEFAULT_WPT_TTL_MS}. */
  readonly ttlMs?: number
  /** A transaction/task token sent with the request: bound as `tth`. */
  readonly taskToken?: string
  /** An access token sent with the request: bound as `ath`. */
  readonly accessToken?: string
}

const encoder = new TextEncoder()

/** Signs a WPT for one request. @throws ERR_REQUEST_INVALID, ERR_TTL_INVALID, ERR_KEY_MALFORMED */
export async function signWpt(p: SignWptParams): Promise<string> {
  const ttlMs = p.ttlMs ?? DEFAULT_WPT_TTL_MS
  if (!Number.isFinite(p.nowMs) || !(ttlMs >= 1000))
    throw new IdentityError('ERR_TTL_INVALID', 'a WPT needs nowMs and a ttlMs of at least 1 s')
  const iat = Math.floor(p.nowMs / 1000)
  const claims = {
    aud: proofTargetUri(p.url),
    iat,
    exp: Math.floor((p.nowMs + ttlMs) / 1000),
    jti: randomBytes(16).toString('base64url'),
    wth: tokenHash(p.wit),
    ...(p.method !== undefined && { htm: p.method.toUpperCase() }),
    ...(p.taskToken !== undefined && { tth: tokenHash(p.taskToken) }),
    ...(p.accessToken !== undefined && { ath: tokenHash(p.accessToken) }),
  }
  const signingKey = await cryptoKeyFor(p.key.privateKey, p.key.alg)
  try {
    const token = await new CompactSign(encoder.encode(JSON.stringify(claims)))
      .setProtectedHeader({ alg: p.key.alg, typ: WPT_TYP })
      .sign(signingKey)
    return toLowS(p.key.alg, token)
  } catch (err) {
    throw new IdentityError('ERR_KEY_MALFORMED', 'signing the WPT failed', { cause: err })
  }
}

/** What {@link verifyProof} checks a WIT + WPT pair against. */
export interface VerifyProofParams {
  readonly wit: string
  readonly wpt: string
  readonly witBundles: WitBundleSource
  /** The URI the request was actually sent to ({@link proofTargetUri} of it). */
  readonly targetUri: string
  /** The request's method: must equal `htm` when the WPT has one. */
  readonly method: string
  readonly replayCache: ReplayCache
  /** Validated WITs, so that a WIT seen again is not checked again from scratch; default none. */
  readonly witCache?: ValidatedWitCache
  readonly nowMs: number
  /** Skew tolerated on the WPT's times; default {@link DEFAULT_WPT_LEEWAY_MS}. */
  readonly leewayMs?: number
  /** Skew tolerated on the WIT's times; default 30 s. */
  readonly witLeewayMs?: number
  /** The longest `exp - now` accepted; default {@link DEFAULT_WPT_MAX_LIFETIME_MS}. */
  readonly maxLifetimeMs?: number
  /** The task token the request carries, if any: `tth` must then bind it (and be absent otherwise). */
  readonly taskToken?: string
  /** The access token the request carries, if any: `ath` must then bind it (and be absent otherwise). */
  readonly accessToken?: string
}

/** A verified proof: the WIT-SVID it goes with, and the WPT's `jti` and expiry. */
export interface VerifiedProof {
  readonly svid: WitSvid
  readonly jti: string
  readonly expiresAtMs: number
}

/**
 * Verifies a WIT-SVID and its WPT for one request, in order: the WIT against the WIT bundles; the
 * WPT's structure, `typ`, and signature by the WIT's `cnf.jwk` with its `alg`; `exp` (not past,
 * not further than the maximum lifetime, with leeway) and `iat`; `aud` equal to `targetUri`; `wth`,
 * `tth`, `ath` and `htm`; last, `jti` not seen before (so that an invalid proof never fills the cache).
 * @throws the WIT's codes (see `validateWitSvid`); ERR_PROOF_INVALID, ERR_PROOF_EXPIRED,
 *   ERR_PROOF_AUDIENCE_MISMATCH, ERR_PROOF_BINDING_MISMATCH, ERR_PROOF_REPLAYED; ERR_THROTTLED when
 *   the replay cache is full
 */
export async function verifyProof(p: VerifyProofParams): Promise<VerifiedProof> {
  const witOptions = { nowMs: p.nowMs, ...(p.witLeewayMs !== undefined && { leewayMs: p.witLeewayMs }) }
  const svid =
    p.witCache === undefined
      ? await validateWitSvid(p.wit, p.witBundles, witOptions)
      : await p.witCache.validate(p.wit, p.witBundles, witOptions)
  const claims = await verifiedClaims(p.wpt, svid)
  const expiresAtMs = checkTimes(claims, p)
  const aud = claims['aud']
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : []
  if (!audiences.includes(p.targetUri))
    throw new IdentityError(
      'ERR_PROOF_AUDIENCE_MISMATCH',
      `the proof is not for ${p.targetUri.slice(0, 200)}`,
    )
  checkBindings(claims, p)
  const jti = claims['jti']
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH)
    throw new IdentityError(
      'ERR_PROOF_INVALID',
      `the proof needs a "jti" of 1 to ${MAX_JTI_LENGTH} characters`,
    )
  if (!p.replayCache.admit(`${svid.id} ${jti}`, expiresAtMs + (p.leewayMs ?? DEFAULT_WPT_LEEWAY_MS), p.nowMs))
    throw new IdentityError('ERR_PROOF_REPLAYED', 'this proof was already used')
  return Object.freeze({ svid, jti, expiresAtMs })
}

async function verifiedClaims(wpt: string, svid: WitSvid): Promise<Readonly<Record<string, unknown>>> {
  try {
    const { header, claims } = decodeCompactJwt(wpt, 'WPT')
    if (header.typ !== WPT_TYP)
      throw new IdentityError('ERR_PROOF_INVALID', `the proof's "typ" must be ${WPT_TYP}`)
    if (header.alg !== svid.confirmationAlg)
      throw new IdentityError(
        'ERR_PROOF_INVALID',
        `the proof's alg must be the WIT key's ${svid.confirmationAlg}`,
      )
    await verifyJws(wpt, header.alg, svid.confirmationKey, 'WPT')
    return claims
  } catch (err) {
    if (isIdentityError(err, 'ERR_PROOF_INVALID')) throw err
    const message = isIdentityError(err) ? err.message : 'the proof could not be checked'
    throw new IdentityError('ERR_PROOF_INVALID', message, { cause: err })
  }
}

function checkTimes(claims: Readonly<Record<string, unknown>>, p: VerifyProofParams): number {
  const leewayMs = p.leewayMs ?? DEFAULT_WPT_LEEWAY_MS
  const maxLifetimeMs = p.maxLifetimeMs ?? DEFAULT_WPT_MAX_LIFETIME_MS
  const { exp, iat } = claims
  if (typeof exp !== 'number' || !Number.isFinite(exp))
    throw new IdentityError('ERR_PROOF_INVALID', 'the proof needs a numeric "exp"')
  const expMs = exp * 1000
  if (expMs <= p.nowMs - leewayMs) throw new IdentityError('ERR_PROOF_EXPIRED', 'the proof has expired')
  if (expMs > p.nowMs + maxLifetimeMs + leewayMs)
    throw new IdentityError('ERR_PROOF_EXPIRED', `the proof lives longer than ${maxLifetimeMs / 1000} s`)
  if (iat !== undefined && (typeof iat !== 'number' || iat * 1000 > p.nowMs + leewayMs))
    throw new IdentityError(
      'ERR_PROOF_EXPIRED',
      'the proof was issued in the future (clock skew beyond the leeway)',
    )
  return expMs
}

function checkBindings(claims: Readonly<Record<string, unknown>>, p: VerifyProofParams): void {
  if (claims['wth'] !== tokenHash(p.wit))
    throw new IdentityError('ERR_PROOF_BINDING_MISMATCH', 'the proof\'s "wth" does not match the WIT')
  bound(claims['tth'], p.taskToken, 'tth', 'task token')
  bound(claims['ath'], p.accessToken, 'ath', 'access token')
  const htm = claims['htm']
  if (htm !== undefined && htm !== p.method.toUpperCase())
    throw new IdentityError(
      'ERR_PROOF_BINDING_MISMATCH',
      `the proof is for method ${String(htm).slice(0, 16)}`,
    )
}

function bound(claim: unknown, token: string | undefined, name: string, what: string): void {
  if (token === undefined && claim === undefined) return
  if (token === undefined)
    throw new IdentityError(
      'ERR_PROOF_BINDING_MISMATCH',
      `the proof's "${name}" binds a ${what} the request lacks`,
    )
  if (claim !== tokenHash(token))
    throw new IdentityError('ERR_PROOF_BINDING_MISMATCH', `the proof's "${name}" does not match the ${what}`)
}
