import { IdentityError } from '../errors.js'

/**
 * ECDSA signatures come in pairs: when (r, s) verifies, so does (r, n − s). WebCrypto and jose accept
 * both, which gives every ES* token a second spelling (a "malleated" signature) that a replay cache or
 * a revocation list keyed on the token text would not recognise. Tessera therefore signs only the
 * low-S form (s ≤ n/2) and refuses the high-S one everywhere it verifies.
 */

/** The group order n of each JWS ECDSA curve, and the byte length of r and of s. */
const CURVES: Readonly<Record<string, { readonly order: bigint; readonly size: number }>> = {
  ES256: { order: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n, size: 32 },
  ES384: {
    order:
      0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
    size: 48,
  },
  ES512: {
    order:
      0x01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n,
    size: 66,
  },
}

function toBigInt(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes).toString('hex')}`)
}

function toBytes(value: bigint, size: number): Buffer {
  return Buffer.from(value.toString(16).padStart(size * 2, '0'), 'hex')
}

/**
 * True when `signature` (JWS form: r ‖ s, big-endian, fixed width) is an ECDSA signature of `alg`
 * whose s is above n/2. Other algorithms, and signatures of the wrong length (which fail
 * verification anyway), are not high-S.
 * @example
 * isHighS('ES256', Buffer.from(token.split('.')[2]!, 'base64url')) // false for Tessera's own tokens
 */
export function isHighS(alg: string, signature: Uint8Array): boolean {
  const curve = CURVES[alg]
  if (curve === undefined || signature.length !== curve.size * 2) return false
  return toBigInt(signature.subarray(curve.size)) > curve.order / 2n
}

/**
 * The low-S form of a compact JWS signed with an ECDSA `alg`: a high s is replaced by n − s (the
 * same signature, the other spelling); anything else is returned unchanged.
 * @throws ERR_JWT_MALFORMED when `token` is not three dot-separated parts
 * @example
 * const token = toLowS('ES256', await new CompactSign(payload).setProtectedHeader(h).sign(key))
 */
export function toLowS(alg: string, token: string): string {
  const parts = token.split('.')
  if (parts.length !== 3) throw new IdentityError('ERR_JWT_MALFORMED', 'not a compact JWS')
  return isHighS(alg, Buffer.from(parts[2] ?? '', 'base64url')) ? flipS(alg, token) : token
}

/**
 * The other spelling of an ECDSA compact JWS: s replaced by n − s. For tests of the refusal.
 * @throws ERR_JWT_MALFORMED when `token` is not a compact JWS of `alg`'s signature size
 * @example
 * const malleated = flipS('ES256', token) // verifies under WebCrypto; Tessera refuses it
 */
export function flipS(alg: string, token: string): string {
  const parts = token.split('.')
  const curve = CURVES[alg]
  const signature = Buffer.from(parts[2] ?? '', 'base64url')
  if (parts.length !== 3 || curve === undefined || signature.length !== curve.size * 2)
    throw new IdentityError('ERR_JWT_MALFORMED', `not a compact JWS signed with ${alg}`)
  const s = toBigInt(signature.subarray(curve.size))
  const flipped = Buffer.concat([signature.subarray(0, curve.size), toBytes(curve.order - s, curve.size)])
  return `${parts[0]}.${parts[1]}.${flipped.toString('base64url')}`
}
