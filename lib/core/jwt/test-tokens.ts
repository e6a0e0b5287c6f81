import { generateKeyPair, type KeyObject, sign } from 'node:crypto'
import { promisify } from 'node:util'
import { BundleSet } from '../bundle/bundle-source.js'
import { JwtBundle } from '../bundle/jwt-bundle.js'
import { isIdentityError } from '../errors.js'
import { TrustDomain } from '../trust-domain.js'
import { toLowS } from './ecdsa-low-s.js'

/** Test helpers for JWT-SVID tests: keys, a bundle set, and hand-crafted tokens. */

/** A fixed validation time, in ms and in seconds. */
export const NOW = 1_700_000_000_000
export const NOW_S = NOW / 1000

/** A protected header and claims that validate at {@link NOW} for audience `svc` with key `ec`. */
export const goodHeader = { alg: 'ES256', kid: 'ec', typ: 'JWT' }
export const goodClaims = { sub: 'spiffe://example.org/workload', aud: ['svc'], exp: NOW_S + 300, iat: NOW_S }

/** base64url of a string, or of a value's JSON. */
export function b64(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')
}

export interface TestKeys {
  ec: KeyObject
  rsa: KeyObject
  p384: KeyObject
  /** A key of `other.org`, whose bundle names it `other`. */
  otherEc: KeyObject
  /** `example.org` (kids `ec`, `rsa`, `p384`) and `other.org` (kid `other`). */
  bundles: BundleSet
}

const generate = promisify(generateKeyPair)

/** Private keys and the bundle set holding their public halves. */
export async function makeTestKeys(): Promise<TestKeys> {
  const [ec, rsa, p384, otherEc] = await Promise.all([
    generate('ec', { namedCurve: 'P-256' }),
    generate('rsa', { modulusLength: 2048 }),
    generate('ec', { namedCurve: 'P-384' }),
    generate('ec', { namedCurve: 'P-256' }),
  ])
  const td = TrustDomain.parse('example.org')
  const other = TrustDomain.parse('other.org')
  const bundles = BundleSet.of({
    jwt: [
      JwtBundle.fromAuthorities(td, [
        { kid: 'ec', key: ec.publicKey },
        { kid: 'rsa', key: rsa.publicKey },
        { kid: 'p384', key: p384.publicKey },
      ]),
      JwtBundle.fromAuthorities(other, [{ kid: 'other', key: otherEc.publicKey }]),
    ],
  })
  return {
    ec: ec.privateKey,
    rsa: rsa.privateKey,
    p384: p384.privateKey,
    otherEc: otherEc.privateKey,
    bundles,
  }
}

/**
 * Signs any header and claims with node:crypto, so that each validation step can be reached alone.
 * ECDSA signatures are given in their low-S form, as Tessera signs them.
 */
export function craft(
  header: Record<string, unknown>,
  claims: Record<string, unknown>,
  key: KeyObject,
): string {
  const input = `${b64(header)}.${b64(claims)}`
  const alg = String(header['alg'])
  const options = alg.startsWith('PS')
    ? { key, padding: 6, saltLength: Number(alg.slice(2)) / 8 }
    : { key, dsaEncoding: 'ieee-p1363' as const }
  const signature = sign(`sha${alg.slice(2)}`, Buffer.from(input), options).toString('base64url')
  return toLowS(alg, `${input}.${signature}`)
}

/** The IdentityError code a promise rejects with, `undefined` when it resolves. */
export async function rejectionCode(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise
  } catch (err) {
    return isIdentityError(err) ? err.code : `not an IdentityError: ${String(err)}`
  }
  return undefined
}
