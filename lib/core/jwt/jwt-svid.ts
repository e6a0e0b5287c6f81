import { type KeyObject, webcrypto } from 'node:crypto'
import { IdentityError } from '../errors.js'
import { SpiffeId } from '../spiffe-id.js'

/**
 * JWT-SVID records and the unverified parse (spec §5, §7.E). Minting lives in `jwt-svid-mint.ts`,
 * signature and claim validation in `jwt-svid-validate.ts`.
 */

/** The JWS algorithms a JWT-SVID may use (spec §5): `none`, HS* and EdDSA are never accepted. */
export const JWT_SVID_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'ES256',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
] as const

/** One of {@link JWT_SVID_ALGORITHMS}. */
export type JwtSvidAlgorithm = (typeof JWT_SVID_ALGORITHMS)[number]

const ALLOWED: ReadonlySet<string> = new Set(JWT_SVID_ALGORITHMS)

/** A JWT-SVID whose structure (and, when it came from `validateJwtSvid`, signature and times) was checked. */
export interface JwtSvid {
  /** The subject, from `sub`. */
  readonly id: SpiffeId
  /** The `aud` claim, always as a list. */
  readonly audience: ReadonlyArray<string>
  /** `exp` in milliseconds since the epoch. */
  readonly expiresAtMs: number
  /** `iat` in milliseconds since the epoch, when present. */
  readonly issuedAtMs?: number
  /** Every claim, as decoded (deeply frozen). */
  readonly claims: Readonly<Record<string, unknown>>
  /** The compact token itself. */
  readonly token: string
}

/** The protected header of a JWT-SVID. */
export interface JwtSvidHeader {
  readonly alg: JwtSvidAlgorithm
  readonly kid?: string
  readonly typ?: string
}

/** What {@link parseJwtSvidInsecure} returns: the claims and the header, none of them verified. */
export interface InsecureJwtSvid extends JwtSvid {
  readonly header: JwtSvidHeader
}

/**
 * Decodes a JWT-SVID **without checking its signature or times**, for agents that inspect what
 * they were handed. Applies every structural rule: compact JWS, allowed `alg`, `typ` absent or
 * `JWT`/`JOSE`, no `crit`, a valid SPIFFE ID in `sub`, a non-empty `aud`, a numeric `exp`.
 * Never use the result to make a trust decision.
 * @throws ERR_JWT_MALFORMED, ERR_JWT_ALG_UNSUPPORTED, ERR_JWT_INVALID
 */
export function parseJwtSvidInsecure(token: string): InsecureJwtSvid {
  const { header, svid } = decodeJwtSvid(token)
  return Object.freeze({ ...svid, header })
}

/** @internal Decodes and structurally checks a token; shared with the validator. */
export function decodeJwtSvid(token: unknown): { header: JwtSvidHeader; svid: JwtSvid } {
  if (typeof token !== 'string') throw malformed('a JWT-SVID must be a string')
  const parts = token.split('.')
  if (parts.length !== 3) throw malformed('a JWT-SVID must be a compact JWS of three parts')
  const [encodedHeader, encodedClaims, signature] = parts as [string, string, string]
  const header = checkHeader(decodeSegment(encodedHeader, 'header'))
  const claims = decodeSegment(encodedClaims, 'claims')
  if (!isBase64Url(signature)) throw malformed('the signature is not base64url')
  return { header, svid: checkClaims(claims, token) }
}

const BASE64URL = /^[A-Za-z0-9_-]*$/
const utf8 = new TextDecoder('utf-8', { fatal: true })

function isBase64Url(segment: string): boolean {
  return segment.length % 4 !== 1 && BASE64URL.test(segment)
}

function decodeSegment(segment: string, what: string): Record<string, unknown> {
  if (segment.length === 0 || !isBase64Url(segment)) throw malformed(`the ${what} is not base64url`)
  let value: unknown
  try {
    value = JSON.parse(utf8.decode(Buffer.from(segment, 'base64url')))
  } catch (err) {
    throw malformed(`the ${what} is not UTF-8 JSON`, err)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw malformed(`the ${what} is not a JSON object`)
  }
  return value as Record<string, unknown>
}

function checkHeader(raw: Record<string, unknown>): JwtSvidHeader {
  const { alg, kid, typ } = raw
  if (typeof alg !== 'string') throw malformed('the header has no "alg"')
  if (!ALLOWED.has(alg)) throw new IdentityError('ERR_JWT_ALG_UNSUPPORTED', `alg ${alg} is not allowed`)
  if (typ !== undefined && typ !== 'JWT' && typ !== 'JOSE') throw invalid('"typ" must be JWT or JOSE')
  if (Object.hasOwn(raw, 'crit')) throw invalid('a JWT-SVID must not carry a "crit" header')
  if (kid !== undefined && (typeof kid !== 'string' || kid.length === 0)) {
    throw invalid('"kid" must be a non-empty string')
  }
  return Object.freeze({
    alg: alg as JwtSvidAlgorithm,
    ...(kid === undefined ? {} : { kid }),
    ...(typ === undefined ? {} : { typ }),
  })
}

function checkClaims(claims: Record<string, unknown>, token: string): JwtSvid {
  const id = parseSubject(claims['sub'])
  const audience = parseAudience(claims['aud'])
  const exp = numericDate(claims, 'exp')
  if (exp === undefined) throw invalid('"exp" is required')
  numericDate(claims, 'nbf')
  const iat = numericDate(claims, 'iat')
  return Object.freeze({
    id,
    audience,
    expiresAtMs: exp * 1000,
    ...(iat === undefined ? {} : { issuedAtMs: iat * 1000 }),
    claims: deepFreeze(claims),
    token,
  })
}

function parseSubject(sub: unknown): SpiffeId {
  if (typeof sub !== 'string' || sub.length === 0) throw invalid('"sub" must be a SPIFFE ID')
  try {
    return SpiffeId.parse(sub)
  } catch (err) {
    throw invalid('"sub" is not a valid SPIFFE ID', err)
  }
}

function parseAudience(aud: unknown): ReadonlyArray<string> {
  const list = typeof aud === 'string' ? [aud] : aud
  if (!Array.isArray(list) || list.length === 0) throw invalid('"aud" must hold at least one audience')
  for (const a of list) {
    if (typeof a !== 'string' || a.length === 0) throw invalid('every audience must be a non-empty string')
  }
  return Object.freeze([...(list as string[])])
}

/** The NumericDate claim `name` in seconds, or undefined when absent. @throws ERR_JWT_INVALID */
function numericDate(claims: Record<string, unknown>, name: string): number | undefined {
  const value = claims[name]
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalid(`"${name}" must be a NumericDate`)
  return value
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}

function malformed(message: string, cause?: unknown): IdentityError {
  return new IdentityError('ERR_JWT_MALFORMED', message, { cause })
}

function invalid(message: string, cause?: unknown): IdentityError {
  return new IdentityError('ERR_JWT_INVALID', message, { cause })
}

const HASH = { '256': 'SHA-256', '384': 'SHA-384', '512': 'SHA-512' } as const
const EC_ALGORITHM: Readonly<Record<string, JwtSvidAlgorithm>> = {
  prime256v1: 'ES256',
  secp384r1: 'ES384',
  secp521r1: 'ES512',
}
const RSA_ALGORITHMS: ReadonlyArray<JwtSvidAlgorithm> = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']
const algorithmCache = new WeakMap<KeyObject, ReadonlyArray<JwtSvidAlgorithm>>()
const cryptoKeyCache = new WeakMap<KeyObject, Map<JwtSvidAlgorithm, Promise<webcrypto.CryptoKey>>>()

/** @internal The algorithms `key` can sign or verify, preferred first (cached per key). */
export function algorithmsForKey(key: KeyObject): ReadonlyArray<JwtSvidAlgorithm> {
  let algs = algorithmCache.get(key)
  if (algs === undefined) {
    const type = key.asymmetricKeyType
    const ec = type === 'ec' ? EC_ALGORITHM[key.asymmetricKeyDetails?.namedCurve ?? ''] : undefined
    algs = ec !== undefined ? [ec] : type === 'rsa' ? RSA_ALGORITHMS : []
    algorithmCache.set(key, algs)
  }
  return algs
}

/**
 * @internal The WebCrypto key for `key` under `alg`, imported once and cached, so signing and
 * verifying never re-import (and never export EC keys as JWK, see DESIGN.md §5).
 * @throws ERR_KEY_MALFORMED (the promise rejects)
 */
export function cryptoKeyFor(key: KeyObject, alg: JwtSvidAlgorithm): Promise<webcrypto.CryptoKey> {
  let perAlg = cryptoKeyCache.get(key)
  if (perAlg === undefined) {
    perAlg = new Map()
    cryptoKeyCache.set(key, perAlg)
  }
  let imported = perAlg.get(alg)
  if (imported === undefined) {
    imported = importCryptoKey(key, alg)
    perAlg.set(alg, imported)
  }
  return imported
}

async function importCryptoKey(key: KeyObject, alg: JwtSvidAlgorithm): Promise<webcrypto.CryptoKey> {
  const hash = HASH[alg.slice(2) as keyof typeof HASH]
  const params =
    alg[0] === 'E'
      ? { name: 'ECDSA', namedCurve: `P-${alg === 'ES512' ? '521' : alg.slice(2)}` }
      : { name: alg[0] === 'R' ? 'RSASSA-PKCS1-v1_5' : 'RSA-PSS', hash }
  try {
    if (key.type === 'private') {
      const der = key.export({ type: 'pkcs8', format: 'der' })
      return await webcrypto.subtle.importKey('pkcs8', der, params, false, ['sign'])
    }
    const der = key.export({ type: 'spki', format: 'der' })
    return await webcrypto.subtle.importKey('spki', der, params, false, ['verify'])
  } catch (err) {
    throw new IdentityError('ERR_KEY_MALFORMED', `the key cannot be used for ${alg}`, { cause: err })
  }
}
