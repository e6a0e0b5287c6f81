import { createPublicKey, ECDH, type KeyObject } from 'node:crypto'
import { IdentityError } from '../errors.js'

/**
 * Public JSON Web Keys (RFC 7517/7518) as bundles carry them: the conversion between a JWK's
 * key members and a `KeyObject`. EC keys never go through `KeyObject.export({ format: 'jwk' })`,
 * which deadlocks on Node 20 for some keys (DESIGN.md §5); their coordinates come from the SPKI.
 */

/** The public key members of a JWK, in the order Tessera writes them. */
export type PublicJwk =
  | Readonly<{ kty: 'EC'; crv: EcCurveName; x: string; y: string }>
  | Readonly<{ kty: 'RSA'; n: string; e: string }>
  | Readonly<{ kty: 'OKP'; crv: 'Ed25519' | 'Ed448'; x: string }>

/** The JWK names of the supported EC curves. */
export type EcCurveName = 'P-256' | 'P-384' | 'P-521'

interface CurveInfo {
  readonly jwk: EcCurveName
  readonly node: string
  /** Coordinate size in bytes. */
  readonly size: number
}

const CURVES: ReadonlyArray<CurveInfo> = [
  { jwk: 'P-256', node: 'prime256v1', size: 32 },
  { jwk: 'P-384', node: 'secp384r1', size: 48 },
  { jwk: 'P-521', node: 'secp521r1', size: 66 },
]
const OKP_SIZES: Readonly<Record<string, number>> = { Ed25519: 32, Ed448: 57 }
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv']
const BASE64URL = /^[A-Za-z0-9_-]*$/

/** True when `jwk` has a `kty` (and, for EC and OKP, a `crv`) this module can import. */
export function isSupportedJwk(jwk: Readonly<Record<string, unknown>>): boolean {
  if (jwk['kty'] === 'RSA') return true
  if (jwk['kty'] === 'EC') return CURVES.some((c) => c.jwk === jwk['crv'])
  if (jwk['kty'] === 'OKP') return typeof jwk['crv'] === 'string' && Object.hasOwn(OKP_SIZES, jwk['crv'])
  return false
}

/**
 * Builds a public `KeyObject` from a JWK's key members. Other members (`kid`, `use`, `x5c`…) are
 * ignored. EC coordinates shorter than the curve size are zero-padded first; longer ones are refused.
 * A JWK with private members is refused: bundles hold public keys only.
 * @throws ERR_KEY_MALFORMED
 */
export function importPublicJwk(jwk: Readonly<Record<string, unknown>>): KeyObject {
  const priv = PRIVATE_MEMBERS.find((m) => Object.hasOwn(jwk, m))
  if (priv !== undefined) throw malformed(`a public JWK must not have the "${priv}" member`)
  if (!isSupportedJwk(jwk)) throw malformed('unsupported JWK "kty" or "crv"')
  const members = normalizedMembers(jwk)
  try {
    return createPublicKey({ key: members, format: 'jwk' })
  } catch (err) {
    throw malformed('the JWK key parameters do not form a valid public key', err)
  }
}

function normalizedMembers(jwk: Readonly<Record<string, unknown>>): Record<string, string> {
  if (jwk['kty'] === 'RSA') return { kty: 'RSA', n: member(jwk, 'n'), e: member(jwk, 'e') }
  const crv = String(jwk['crv'])
  if (jwk['kty'] === 'OKP') return { kty: 'OKP', crv, x: member(jwk, 'x') }
  const size = CURVES.find((c) => c.jwk === crv)?.size ?? 0
  return {
    kty: 'EC',
    crv,
    x: padCoordinate(member(jwk, 'x'), size),
    y: padCoordinate(member(jwk, 'y'), size),
  }
}

function member(jwk: Readonly<Record<string, unknown>>, name: string): string {
  const value = jwk[name]
  if (typeof value !== 'string' || value.length === 0 || !BASE64URL.test(value) || value.length % 4 === 1) {
    throw malformed(`JWK member "${name}" must be non-empty unpadded base64url`)
  }
  return value
}

function padCoordinate(value: string, size: number): string {
  const bytes = Buffer.from(value, 'base64url')
  if (bytes.length > size) throw malformed('EC coordinate is longer than the curve size')
  if (bytes.length === size) return value
  return Buffer.concat([Buffer.alloc(size - bytes.length), bytes]).toString('base64url')
}

/**
 * The public JWK members of `key` (a private key gives its public half), with EC coordinates
 * zero-padded to the curve size and members in a fixed order.
 * @throws ERR_KEY_MALFORMED when the key is secret or of an unsupported type or curve
 */
export function exportPublicJwk(key: KeyObject): PublicJwk {
  if (key.type === 'secret') throw malformed('a secret key has no public JWK')
  const pub = key.type === 'private' ? createPublicKey(key) : key
  const spki = pub.export({ type: 'spki', format: 'der' })
  switch (pub.asymmetricKeyType) {
    case 'ec':
      return exportEc(pub, spki)
    case 'rsa': {
      const jwk = pub.export({ format: 'jwk' })
      return { kty: 'RSA', n: String(jwk.n), e: String(jwk.e) }
    }
    case 'ed25519':
      return { kty: 'OKP', crv: 'Ed25519', x: spki.subarray(spki.length - 32).toString('base64url') }
    case 'ed448':
      return { kty: 'OKP', crv: 'Ed448', x: spki.subarray(spki.length - 57).toString('base64url') }
    default:
      throw malformed(`unsupported key type ${String(pub.asymmetricKeyType)}`)
  }
}

function exportEc(pub: KeyObject, spki: Buffer): PublicJwk {
  const curve = CURVES.find((c) => c.node === pub.asymmetricKeyDetails?.namedCurve)
  if (curve === undefined) throw malformed('unsupported EC curve')
  let point = spki.subarray(spki.length - (1 + 2 * curve.size))
  if (point[0] !== 0x04) {
    // A compressed point (0x02/0x03 + X) sits at the end of the SPKI: expand it.
    const compressed = spki.subarray(spki.length - (1 + curve.size))
    point = ECDH.convertKey(compressed, curve.node, undefined, undefined, 'uncompressed') as Buffer
  }
  return {
    kty: 'EC',
    crv: curve.jwk,
    x: point.subarray(1, 1 + curve.size).toString('base64url'),
    y: point.subarray(1 + curve.size).toString('base64url'),
  }
}

function malformed(message: string, cause?: unknown): IdentityError {
  return new IdentityError('ERR_KEY_MALFORMED', message, { cause })
}
