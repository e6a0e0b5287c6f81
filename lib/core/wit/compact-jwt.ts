import { IdentityError } from '../errors.js'
import { JWT_SVID_ALGORITHMS, type JwtSvidAlgorithm } from '../jwt/jwt-svid.js'

/** The protected header of a WIT or WPT, as far as the checks here read it. */
export interface CompactJwtHeader {
  readonly alg: JwtSvidAlgorithm
  readonly typ?: string
  readonly kid?: string
}

/** The longest token read at all: a WIT or WPT is well under 2 KiB; anything near this is not one. */
export const MAX_TOKEN_LENGTH = 8192

const ALLOWED: ReadonlySet<string> = new Set(JWT_SVID_ALGORITHMS)
const BASE64URL = /^[A-Za-z0-9_-]+$/
const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * @internal Splits a compact JWS into its decoded header and claims: three base64url parts, JSON
 * objects, an allowed asymmetric `alg` (never `none` or HS*), no `crit`.
 * @throws ERR_JWT_MALFORMED, ERR_JWT_ALG_UNSUPPORTED
 */
export function decodeCompactJwt(
  token: unknown,
  what: string,
): { header: CompactJwtHeader; claims: Readonly<Record<string, unknown>> } {
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH)
    throw malformed(`a ${what} must be a string of 1 to ${MAX_TOKEN_LENGTH} characters`)
  const parts = token.split('.')
  if (parts.length !== 3 || parts.some((p) => !BASE64URL.test(p) || p.length % 4 === 1))
    throw malformed(`a ${what} must be a compact JWS of three base64url parts`)
  const header = decodeObject(parts[0] as string, what, 'header')
  const claims = decodeObject(parts[1] as string, what, 'claims')
  const { alg, typ, kid } = header
  if (typeof alg !== 'string' || !ALLOWED.has(alg))
    throw new IdentityError('ERR_JWT_ALG_UNSUPPORTED', `the ${what} alg ${String(alg)} is not allowed`)
  if (Object.hasOwn(header, 'crit')) throw malformed(`a ${what} must not carry a "crit" header`)
  return {
    header: {
      alg: alg as JwtSvidAlgorithm,
      ...(typeof typ === 'string' && { typ }),
      ...(typeof kid === 'string' && { kid }),
    },
    claims: Object.freeze(claims),
  }
}

function decodeObject(segment: string, what: string, part: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(utf8.decode(Buffer.from(segment, 'base64url')))
  } catch (err) {
    throw malformed(`the ${what} ${part} is not UTF-8 JSON`, err)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw malformed(`the ${what} ${part} is not a JSON object`)
  return value as Record<string, unknown>
}

function malformed(message: string, cause?: unknown): IdentityError {
  return new IdentityError('ERR_JWT_MALFORMED', message, { cause })
}
