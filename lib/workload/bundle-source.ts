import { BundleSet, type JwtBundleSource, type X509BundleSource } from '../core/bundle/bundle-source.js'
import type { JwtBundle } from '../core/bundle/jwt-bundle.js'
import type { X509Bundle } from '../core/bundle/x509-bundle.js'
import type { TrustDomain } from '../core/trust-domain.js'
import {
  DEFAULT_FIRST_UPDATE_TIMEOUT_MS,
  type SourceOptions,
  sourceClient,
  WatchedValue,
} from './watched-value.js'
import type { WorkloadClient } from './workload-client.js'

/**
 * The current X.509 and JWT bundles the agent lets this workload see, kept up to date from the
 * FetchX509Bundles and FetchJWTBundles streams: what a verifier needs, without an SVID of its own
 * (the Node equivalent of go-spiffe's `workloadapi.BundleSource`, which reads the X.509 side from
 * FetchX509SVID instead). Each update replaces every bundle of its kind; bundles of different trust
 * domains are never merged.
 * @example
 * const bundles = await BundleSource.create({ endpoint: 'unix:///run/tessera/api.sock' })
 * const x509 = bundles.getX509BundleForTrustDomain(TrustDomain.parse('example.org'))
 * const jwt = bundles.getJwtBundleForTrustDomain(TrustDomain.parse('example.org'))
 * bundles.close()
 */
export class BundleSource implements X509BundleSource, JwtBundleSource {
  readonly #client: WorkloadClient
  readonly #ownsClient: boolean
  readonly #x509 = new WatchedValue<BundleSet>('X.509 bundles')
  readonly #jwt = new WatchedValue<BundleSet>('JWT bundles')
  #isClosed = false

  private constructor(client: WorkloadClient, ownsClient: boolean) {
    this.#client = client
    this.#ownsClient = ownsClient
  }

  /**
   * Starts both watches and resolves once each has delivered its first bundle set; failures before
   * that are retried with backoff.
   * @throws ERR_ENDPOINT_INVALID; ERR_WORKLOAD_API_UNAVAILABLE after `timeoutMs`; the agent's final error
   */
  static async create(options: SourceOptions = {}): Promise<BundleSource> {
    const { client, ownsClient } = sourceClient(options)
    const source = new BundleSource(client, ownsClient)
    source.#x509.start((onUpdate, onError) => client.watchX509Bundles(onUpdate, onError), options.onError)
    source.#jwt.start((onUpdate, onError) => client.watchJwtBundles(onUpdate, onError), options.onError)
    const timeoutMs = options.timeoutMs ?? DEFAULT_FIRST_UPDATE_TIMEOUT_MS
    try {
      await Promise.all([
        source.#x509.ready(timeoutMs, options.scheduler),
        source.#jwt.ready(timeoutMs, options.scheduler),
      ])
    } catch (err) {
      source.close()
      throw err
    }
    return source
  }

  /**
   * The X.509 bundle of exactly `td`, or undefined; undefined for everything once closed.
   * @throws ERR_NO_IDENTITY while the agent has withdrawn this workload's bundles (Workload API
   *   §5.2.1: FetchX509Bundles ended with PERMISSION_DENIED), until the reopened stream brings new ones
   */
  getX509BundleForTrustDomain(td: TrustDomain): X509Bundle | undefined {
    return this.#isClosed ? undefined : current(this.#x509)?.getX509BundleForTrustDomain(td)
  }

  /**
   * The JWT bundle of exactly `td`, or undefined; undefined for everything once closed.
   * @throws ERR_NO_IDENTITY while withdrawn (FetchJWTBundles ended with PERMISSION_DENIED)
   */
  getJwtBundleForTrustDomain(td: TrustDomain): JwtBundle | undefined {
    return this.#isClosed ? undefined : current(this.#jwt)?.getJwtBundleForTrustDomain(td)
  }

  /** Both kinds of bundles as one set (empty once closed). @throws ERR_NO_IDENTITY while either kind is withdrawn */
  get bundles(): BundleSet {
    if (this.#isClosed) return BundleSet.empty()
    return BundleSet.of({ x509: current(this.#x509)?.x509Bundles(), jwt: current(this.#jwt)?.jwtBundles() })
  }

  /** Calls `listener` with both kinds after every update of either; returns the unsubscribe function. */
  onUpdate(listener: (bundles: BundleSet) => void): () => void {
    const offX509 = this.#x509.onUpdate(() => listener(this.bundles))
    const offJwt = this.#jwt.onUpdate(() => listener(this.bundles))
    return () => {
      offX509()
      offJwt()
    }
  }

  /** Stops both watches and, when the source made its own client, closes it. Safe to call more than once. */
  close(): void {
    if (this.#isClosed) return
    this.#isClosed = true
    this.#x509.stop()
    this.#jwt.stop()
    if (this.#ownsClient) this.#client.close()
  }
}

/** The watched set, unless the agent has withdrawn it. @throws ERR_NO_IDENTITY while withdrawn */
function current(value: WatchedValue<BundleSet>): BundleSet | undefined {
  const withdrawal = value.withdrawal
  if (withdrawal !== undefined) throw withdrawal
  return value.value
}
