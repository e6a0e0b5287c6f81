import { createHash } from 'node:crypto'
import type { X509BundleSource } from '../core/bundle/bundle-source.js'
import type { X509Bundle } from '../core/bundle/x509-bundle.js'
import { IdentityError } from '../core/errors.js'
import type { TrustDomain } from '../core/trust-domain.js'
import { type Certificate, parseCertificate } from '../core/x509/certificate.js'
import { type VerifiedX509Peer, verifyX509Svid } from '../core/x509/verify-chain.js'

/**
 * How many certificates a peer may send: more is refused before any of them is parsed.
 * @example
 * if (chainDer.length > MAX_PEER_CHAIN_LENGTH) socket.destroy()
 */
export const MAX_PEER_CHAIN_LENGTH = 10

/**
 * How many verified chains a cache keeps unless told otherwise.
 * @example
 * const big = new X509PeerCache({ maxEntries: 4 * DEFAULT_X509_PEER_CACHE_SIZE })
 */
export const DEFAULT_X509_PEER_CACHE_SIZE = 1024

interface Entry {
  readonly peer: VerifiedX509Peer
  /** The bundle the chain verified against; a hit needs the source's current bundle to be this one. */
  bundle: X509Bundle
  /** The window in which every certificate of the verified path is valid. */
  readonly notBeforeMs: number
  readonly notAfterMs: number
}

/**
 * Counters of an {@link X509PeerCache}, for tests and metrics.
 * @example
 * const { hits, misses }: X509PeerCacheStats = cache.stats
 */
export interface X509PeerCacheStats {
  readonly hits: number
  readonly misses: number
  readonly size: number
}

/**
 * Remembers chains that verified, so a repeat peer costs a hash and a map lookup instead of parsing
 * and signature checks. An entry is keyed by the SHA-256 of the exact DER the peer sent and is used
 * only while (a) the source's current bundle for the peer's trust domain is the bundle it verified
 * against (the same object, or one with exactly the same authorities: a removed CA misses and
 * re-verifies), and (b) the verification time lies inside every path certificate's validity window.
 * The authorizer is never cached: it runs on every call. Bounded, least recently used first out.
 * @example
 * const cache = new X509PeerCache({ maxEntries: 256 })
 * const peer = verifyX509Peer(chainDer, source, authorizeAny(), { cache })
 */
export class X509PeerCache {
  readonly #maxEntries: number
  readonly #entries = new Map<string, Entry>()
  #hits = 0
  #misses = 0

  /** @throws RangeError when `maxEntries` is not a positive integer */
  constructor(opts: { readonly maxEntries?: number } = {}) {
    const max = opts.maxEntries ?? DEFAULT_X509_PEER_CACHE_SIZE
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError('maxEntries must be a positive integer')
    this.#maxEntries = max
  }

  /**
   * The verified peer of `chainDer` (leaf first) at `nowMs`, from the cache when it may be used,
   * else verified now (spec §4, §7.C) and remembered.
   * @throws ERR_X509_SVID_INVALID, ERR_CERT_MALFORMED, ERR_BUNDLE_NOT_FOUND, ERR_X509_SVID_UNTRUSTED,
   *   ERR_X509_SVID_EXPIRED
   */
  verify(chainDer: ReadonlyArray<Uint8Array>, bundles: X509BundleSource, nowMs: number): VerifiedX509Peer {
    const key = chainKey(chainDer)
    const cached = this.#entries.get(key)
    if (cached && this.#isUsable(cached, bundles, nowMs)) {
      this.#entries.delete(key)
      this.#entries.set(key, cached)
      this.#hits++
      return cached.peer
    }
    this.#entries.delete(key)
    this.#misses++
    const entry = verifyFresh(chainDer, bundles, nowMs)
    this.#entries.set(key, entry)
    if (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value
      if (oldest !== undefined) this.#entries.delete(oldest)
    }
    return entry.peer
  }

  /** Hits, misses and the number of entries. */
  get stats(): X509PeerCacheStats {
    return { hits: this.#hits, misses: this.#misses, size: this.#entries.size }
  }

  /** Forgets every entry (the counters stay). */
  clear(): void {
    this.#entries.clear()
  }

  #isUsable(entry: Entry, bundles: X509BundleSource, nowMs: number): boolean {
    if (nowMs < entry.notBeforeMs || nowMs > entry.notAfterMs) return false
    const current = bundles.getX509BundleForTrustDomain(entry.peer.id.trustDomain)
    if (current === undefined) return false
    if (current === entry.bundle) return true
    if (!current.equals(entry.bundle)) return false
    entry.bundle = current
    return true
  }
}

/**
 * Parses and verifies a chain without any cache (no authorizer: see `verifyX509Peer`).
 * @throws as {@link X509PeerCache.verify}
 * @example
 * const { id } = verifyChainDer([leafDer, intermediateDer], bundles, Date.now())
 */
export function verifyChainDer(
  chainDer: ReadonlyArray<Uint8Array>,
  bundles: X509BundleSource,
  nowMs: number,
): VerifiedX509Peer {
  return verifyFresh(chainDer, bundles, nowMs).peer
}

function verifyFresh(chainDer: ReadonlyArray<Uint8Array>, bundles: X509BundleSource, nowMs: number): Entry {
  const chain = parseChain(chainDer)
  let used: X509Bundle | undefined
  const recording: X509BundleSource = {
    getX509BundleForTrustDomain: (td: TrustDomain) => {
      used = bundles.getX509BundleForTrustDomain(td)
      return used
    },
  }
  const peer = verifyX509Svid(chain, recording, nowMs)
  if (used === undefined) throw new IdentityError('ERR_BUNDLE_NOT_FOUND', 'the bundle disappeared')
  return {
    peer,
    bundle: used,
    notBeforeMs: Math.max(...peer.path.map((c) => c.notBeforeMs)),
    notAfterMs: Math.min(...peer.path.map((c) => c.notAfterMs)),
  }
}

function checkChainInput(chainDer: ReadonlyArray<Uint8Array>): void {
  if (!Array.isArray(chainDer) || chainDer.length === 0)
    throw new IdentityError('ERR_X509_SVID_INVALID', 'the peer sent no certificate')
  if (chainDer.length > MAX_PEER_CHAIN_LENGTH)
    throw new IdentityError(
      'ERR_X509_SVID_INVALID',
      `the peer sent more than ${MAX_PEER_CHAIN_LENGTH} certificates`,
    )
  for (const der of chainDer) {
    if (!(der instanceof Uint8Array) || der.length === 0)
      throw new IdentityError('ERR_X509_SVID_INVALID', 'a peer certificate is not DER bytes')
  }
}

function parseChain(chainDer: ReadonlyArray<Uint8Array>): Certificate[] {
  checkChainInput(chainDer)
  // Each element must be exactly one certificate (trailing bytes are refused).
  return chainDer.map((der) => parseCertificate(der))
}

/** SHA-256 over each certificate's length and bytes, so different splits of the same bytes differ. */
function chainKey(chainDer: ReadonlyArray<Uint8Array>): string {
  checkChainInput(chainDer)
  const hash = createHash('sha256')
  const length = Buffer.alloc(4)
  for (const der of chainDer) {
    length.writeUInt32BE(der.length)
    hash.update(length)
    hash.update(der)
  }
  return hash.digest('base64')
}
