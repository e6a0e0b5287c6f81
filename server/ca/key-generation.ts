import { type KeyObject, randomBytes } from 'node:crypto'
import type { TrustDomain } from '../../lib/core/trust-domain.js'
import { generateP256PrivateKey } from '../../lib/core/x509/generate-key.js'
import { X509Ca } from './x509-ca.js'

/** Where a key generation stands in its life. */
export type GenerationState = 'prepared' | 'active' | 'retired'

/** A JWT-SVID signing key. */
export interface JwtSigningKey {
  /** Random 32-character key ID, published in the JWT bundle. */
  readonly kid: string
  readonly privateKey: KeyObject
  readonly notAfterMs: number
}

/**
 * One generation of trust-domain keys: an X.509 CA, a JWT and a WIT signing key created together,
 * prepared, activated and retired together.
 */
export interface KeyGeneration {
  readonly id: string
  readonly state: GenerationState
  readonly createdAtMs: number
  readonly x509Ca: X509Ca
  readonly jwtKey: JwtSigningKey
  /**
   * The WIT-SVID signing key (published with `use: wit-svid`). Absent only in a generation saved
   * before WIT-SVIDs existed: WITs are then issued once the next generation is active.
   */
  readonly witKey?: JwtSigningKey
}

/** Generates a fresh EC P-256 private key off the event loop (see `generateP256PrivateKey`). */
export const generateP256Key: () => Promise<KeyObject> = generateP256PrivateKey

/** A random 32-character key ID (base64url of 24 random bytes). */
export function newKeyId(): string {
  return randomBytes(24).toString('base64url')
}

/** Options for {@link createGeneration}. */
export interface NewGenerationOptions {
  readonly trustDomain: TrustDomain
  readonly nowMs: number
  readonly ttlMs: number
  readonly state: GenerationState
  /** Key factory; defaults to {@link generateP256Key}. */
  readonly generateKey?: () => Promise<KeyObject>
}

/** Creates a new generation: a self-signed CA, a JWT key and a WIT key that expire together. */
export async function createGeneration(opts: NewGenerationOptions): Promise<KeyGeneration> {
  const gen = opts.generateKey ?? generateP256Key
  const [caKey, jwtKey, witKey] = await Promise.all([gen(), gen(), gen()])
  const x509Ca = X509Ca.createRoot({
    trustDomain: opts.trustDomain,
    key: caKey,
    nowMs: opts.nowMs,
    ttlMs: opts.ttlMs,
  })
  return {
    id: x509Ca.certificate.serialHex,
    state: opts.state,
    createdAtMs: opts.nowMs,
    x509Ca,
    jwtKey: { kid: newKeyId(), privateKey: jwtKey, notAfterMs: x509Ca.notAfterMs },
    witKey: { kid: newKeyId(), privateKey: witKey, notAfterMs: x509Ca.notAfterMs },
  }
}
