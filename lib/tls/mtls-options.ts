import type { SecureVersion } from 'node:tls'
import { IdentityError } from '../core/errors.js'
import type { RevocationListSource } from '../core/revocation.js'
import type { X509PeerCache } from '../verify/x509-peer-cache.js'
import type { LiveTlsMaterial } from './tls-material.js'

/**
 * Options of {@link createMtlsServer} and {@link mtlsClientOptions}.
 * @example
 * const opts: MtlsOptions = { onRefused: (err) => console.warn(err.code) }
 */
export interface MtlsOptions {
  /** The lowest TLS version accepted; default TLS 1.3. */
  readonly minVersion?: SecureVersion
  /** The cache of verified chains; default the process-wide one; `false` verifies every time. */
  readonly cache?: X509PeerCache | false
  /** Told of every peer the SPIFFE check refused (after which the connection is closed). */
  readonly onRefused?: (err: IdentityError) => void
  /** Told when a server could not take an update's new SVID or bundles (it keeps the previous ones). */
  readonly onError?: (err: IdentityError) => void
  /**
   * Revoked credentials (a `RevocationSource`): a peer whose X509-SVID is revoked is refused
   * (ERR_CREDENTIAL_REVOKED), and a server closes an open connection whose client's SVID gets revoked.
   */
  readonly revocations?: RevocationListSource
}

interface LiveCredentials {
  readonly key: string
  readonly cert: string
  readonly ca: string[]
}

/**
 * Adds `key`, `cert` and `ca` to `base` as enumerable getters of the current material, so that Node
 * (`connect(options)`, `createServer(options)`) and spreads (`{ ...options }`) read them at that moment.
 */
export function withLiveCredentials<T extends object>(live: LiveTlsMaterial, base: T): T & LiveCredentials {
  return Object.defineProperties(base, {
    key: { get: () => live.current().key, enumerable: true },
    cert: { get: () => live.current().cert, enumerable: true },
    ca: { get: () => [...live.current().ca], enumerable: true },
  }) as T & LiveCredentials
}

/** The `cache` and `revocations` members of verification options, absent when the caller gave none. */
export function cacheOption(opts: MtlsOptions): {
  cache?: X509PeerCache | false
  revocations?: RevocationListSource
} {
  return {
    ...(opts.cache !== undefined && { cache: opts.cache }),
    ...(opts.revocations !== undefined && { revocations: opts.revocations }),
  }
}

/** `err` itself when it is an IdentityError, else wrapped as ERR_X509_SVID_UNTRUSTED. */
export function asIdentityError(err: unknown): IdentityError {
  if (err instanceof IdentityError) return err
  return new IdentityError('ERR_X509_SVID_UNTRUSTED', 'the peer could not be verified', { cause: err })
}
