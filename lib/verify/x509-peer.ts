import type { X509BundleSource } from '../core/bundle/bundle-source.js'
import { type Clock, systemClock } from '../core/clock.js'
import { IdentityError } from '../core/errors.js'
import { checkNotRevoked, type RevocationListSource } from '../core/revocation.js'
import type { VerifiedX509Peer } from '../core/x509/verify-chain.js'
import type { Authorizer } from './authorizer.js'
import { MAX_PEER_CHAIN_LENGTH, verifyChainDer, X509PeerCache } from './x509-peer-cache.js'

export type { VerifiedX509Peer } from '../core/x509/verify-chain.js'

/**
 * When to verify and which cache to use.
 * @example
 * const opts: VerifyX509PeerOptions = { clock: systemClock, cache: new X509PeerCache({ maxEntries: 64 }) }
 */
export interface VerifyX509PeerOptions {
  /** The verification time (ms since the epoch); wins over `clock`. */
  readonly nowMs?: number
  /** Where the time comes from when `nowMs` is not given; default the system clock. */
  readonly clock?: Clock
  /** The cache of verified chains; default one shared by the process; `false` verifies every time. */
  readonly cache?: X509PeerCache | false
  /**
   * Revoked credentials (a `RevocationSource`): a leaf revoked by serial, or issued to its ID before
   * a revocation of that ID, is refused with ERR_CREDENTIAL_REVOKED (checked every time, cache or not).
   */
  readonly revocations?: RevocationListSource
}

/**
 * The process-wide cache {@link verifyX509Peer} uses unless told otherwise.
 * @example
 * console.log(defaultX509PeerCache.stats.hits)
 */
export const defaultX509PeerCache = new X509PeerCache()

/**
 * Verifies a peer's X509-SVID chain as it came off the wire (DER, leaf first) and authorizes its
 * SPIFFE ID, the Node equivalent of go-spiffe's `x509svid.Verify` followed by an authorizer.
 * The chain must lead to an authority in the bundle of **the leaf ID's own trust domain** (a federated
 * peer verifies against its trust domain's bundle only; bundles are never pooled), per spec §4 and §7.C.
 * A chain that verified before is taken from the cache while the bundle and the validity window still
 * hold; the authorizer runs every time.
 * @throws ERR_X509_SVID_INVALID (empty, more than 10 certificates, leaf rules), ERR_CERT_MALFORMED,
 *   ERR_BUNDLE_NOT_FOUND, ERR_X509_SVID_UNTRUSTED, ERR_X509_SVID_EXPIRED, ERR_CREDENTIAL_REVOKED,
 *   ERR_PEER_UNAUTHORIZED
 * @example
 * const peer = verifyX509Peer([leafDer], source, authorizeMemberOf(TrustDomain.parse('example.org')))
 * console.log(peer.id.toString())
 */
export function verifyX509Peer(
  chainDer: ReadonlyArray<Uint8Array>,
  bundles: X509BundleSource,
  authorizer: Authorizer,
  opts: VerifyX509PeerOptions = {},
): VerifiedX509Peer {
  const nowMs = opts.nowMs ?? (opts.clock ?? systemClock).nowMs()
  const cache = opts.cache === undefined ? defaultX509PeerCache : opts.cache
  const peer = cache ? cache.verify(chainDer, bundles, nowMs) : verifyChainDer(chainDer, bundles, nowMs)
  const leaf = peer.path[0]
  if (leaf !== undefined) {
    const { serialHex, notBeforeMs } = leaf
    checkNotRevoked(opts.revocations, { kind: 'x509', id: peer.id, serialHex, notBeforeMs })
  }
  authorizer(peer.id)
  return peer
}

/**
 * The part of Node's `tls.DetailedPeerCertificate` (from `socket.getPeerCertificate(true)`) the chain
 * walk reads. An empty object (Node's answer when the peer sent no certificate) has no `raw`.
 * @example
 * const cert: PeerCertificateLike = socket.getPeerCertificate(true)
 */
export interface PeerCertificateLike {
  readonly raw?: Uint8Array
  readonly fingerprint256?: string
  readonly issuerCertificate?: PeerCertificateLike
}

/**
 * Options of {@link verifyPeerCertificate}.
 * @example
 * const opts: VerifyPeerCertificateOptions = { localCaFingerprints: new Set([caFingerprint256]) }
 */
export interface VerifyPeerCertificateOptions extends VerifyX509PeerOptions {
  /**
   * `fingerprint256` values (Node's `AA:BB:…` form) of the CA certificates this side configured as
   * `ca`. Node appends issuers it finds in that local store to the chain the peer sent; the walk stops
   * at the first of them, so only what the peer sent is used as intermediates.
   */
  readonly localCaFingerprints?: ReadonlySet<string>
}

/**
 * The DER chain (leaf first) the peer sent, read from Node's `getPeerCertificate(true)` object. The walk
 * follows `issuerCertificate` from the leaf and stops at: the end; a self-issued certificate (Node links
 * a root to itself; a root is only ever taken from the bundle, never from the peer); a certificate seen
 * before (loop guard); a certificate of `localCaFingerprints` (Node added it from the local store).
 * @throws ERR_X509_SVID_INVALID when the peer sent no certificate or the walk passes 10 certificates
 * @example
 * const chainDer = peerChainOf(socket.getPeerCertificate(true))
 */
export function peerChainOf(
  peerCert: PeerCertificateLike | null | undefined,
  localCaFingerprints: ReadonlySet<string> = new Set(),
): Uint8Array[] {
  const leafDer = peerCert?.raw
  if (!(leafDer instanceof Uint8Array) || leafDer.length === 0)
    throw new IdentityError('ERR_X509_SVID_INVALID', 'the peer sent no certificate')
  const chain: Uint8Array[] = [leafDer]
  const seen = new Set<PeerCertificateLike>([peerCert as PeerCertificateLike])
  for (let next = peerCert?.issuerCertificate; next !== undefined && next !== null; ) {
    if (seen.has(next) || next.issuerCertificate === next) break
    if (next.fingerprint256 !== undefined && localCaFingerprints.has(next.fingerprint256)) break
    const der = next.raw
    if (!(der instanceof Uint8Array) || der.length === 0 || chain.some((c) => Buffer.compare(c, der) === 0))
      break
    if (chain.length === MAX_PEER_CHAIN_LENGTH)
      throw new IdentityError(
        'ERR_X509_SVID_INVALID',
        `the peer sent more than ${MAX_PEER_CHAIN_LENGTH} certificates`,
      )
    chain.push(der)
    seen.add(next)
    next = next.issuerCertificate
  }
  return chain
}

/**
 * {@link verifyX509Peer} on the certificate chain of a TLS connection, read with {@link peerChainOf}
 * from `socket.getPeerCertificate(true)` (or the `cert` argument of `checkServerIdentity`).
 * @throws as {@link peerChainOf} and {@link verifyX509Peer}
 * @example
 * const peer = verifyPeerCertificate(socket.getPeerCertificate(true), source, authorizeAny())
 */
export function verifyPeerCertificate(
  peerCert: PeerCertificateLike | null | undefined,
  bundles: X509BundleSource,
  authorizer: Authorizer,
  opts: VerifyPeerCertificateOptions = {},
): VerifiedX509Peer {
  return verifyX509Peer(peerChainOf(peerCert, opts.localCaFingerprints), bundles, authorizer, opts)
}
