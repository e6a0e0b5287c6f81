import { BundleSet, type JwtBundleSource } from '../core/bundle/bundle-source.js'
import type { JwtBundle } from '../core/bundle/jwt-bundle.js'
import { IdentityError } from '../core/errors.js'
import type { TrustDomain } from '../core/trust-domain.js'
import type { WorkloadJwtSvid } from './responses.js'
import {
  DEFAULT_FIRST_UPDATE_TIMEOUT_MS,
  type SourceOptions,
  sourceClient,
  WatchedValue,
} from './watched-value.js'
import type { CallTimeout, FetchJwtSvidParams, WorkloadClient } from './workload-client.js'

/**
 * JWT-SVIDs on demand and the current JWT bundles, kept up to date from the Workload API's
 * FetchJWTBundles stream, the Node equivalent of go-spiffe's `workloadapi.JWTSource`. Each update
 * replaces every bundle: a trust domain the agent stops sending is no longer trusted, and a removed
 * key no longer validates. Use it with `validateJwtSvid` to check tokens locally.
 * @example
 * const source = await JwtSource.create({ endpoint: 'unix:///run/tessera/api.sock' })
 * const { token } = await source.fetchJwtSvid({ audience: 'https://api.example.org' })
 * const svid = await validateJwtSvid(incomingToken, source, 'https://api.example.org', { nowMs: Date.now() })
 * source.close()
 */
export class JwtSource implements JwtBundleSource {
  readonly #client: WorkloadClient
  readonly #ownsClient: boolean
  readonly #bundles = new WatchedValue<BundleSet>('JWT bundles')
  #isClosed = false

  private constructor(client: WorkloadClient, ownsClient: boolean) {
    this.#client = client
    this.#ownsClient = ownsClient
  }

  /**
   * Starts watching the JWT bundles and resolves once the first set has arrived; failures before
   * that are retried with backoff.
   * @throws ERR_ENDPOINT_INVALID; ERR_WORKLOAD_API_UNAVAILABLE after `timeoutMs`; the agent's final error
   */
  static async create(options: SourceOptions = {}): Promise<JwtSource> {
    const { client, ownsClient } = sourceClient(options)
    const source = new JwtSource(client, ownsClient)
    source.#bundles.start((onUpdate, onError) => client.watchJwtBundles(onUpdate, onError), options.onError)
    try {
      await source.#bundles.ready(options.timeoutMs ?? DEFAULT_FIRST_UPDATE_TIMEOUT_MS, options.scheduler)
    } catch (err) {
      source.close()
      throw err
    }
    return source
  }

  /**
   * A fresh JWT-SVID for the audiences (the default identity's, or `spiffeId`'s) from the agent.
   * @throws ERR_WORKLOAD_API_UNAVAILABLE once closed; see `WorkloadClient.fetchJwtSvids`
   */
  async fetchJwtSvid(params: FetchJwtSvidParams, options: CallTimeout = {}): Promise<WorkloadJwtSvid> {
    this.#checkOpen()
    return this.#client.fetchJwtSvid(params, options)
  }

  /** One JWT-SVID per entitled identity. @throws see `WorkloadClient.fetchJwtSvids` */
  async fetchJwtSvids(params: FetchJwtSvidParams, options: CallTimeout = {}): Promise<WorkloadJwtSvid[]> {
    this.#checkOpen()
    return this.#client.fetchJwtSvids(params, options)
  }

  /**
   * The JWT bundle of exactly `td`, or undefined; undefined for everything once closed.
   * @throws ERR_NO_IDENTITY while the agent has withdrawn this workload's bundles (Workload API
   *   §5.2.1: FetchJWTBundles ended with PERMISSION_DENIED), until the reopened stream brings new ones
   */
  getJwtBundleForTrustDomain(td: TrustDomain): JwtBundle | undefined {
    return this.#isClosed ? undefined : this.#current()?.getJwtBundleForTrustDomain(td)
  }

  /** The current JWT bundles (empty once closed). @throws ERR_NO_IDENTITY while withdrawn */
  get bundles(): BundleSet {
    return this.#isClosed ? BundleSet.empty() : (this.#current() ?? BundleSet.empty())
  }

  /** Calls `listener` after every bundle update; returns the unsubscribe function. */
  onUpdate(listener: (bundles: BundleSet) => void): () => void {
    return this.#bundles.onUpdate(listener)
  }

  /** Stops watching and, when the source made its own client, closes it. Safe to call more than once. */
  close(): void {
    if (this.#isClosed) return
    this.#isClosed = true
    this.#bundles.stop()
    if (this.#ownsClient) this.#client.close()
  }

  #current(): BundleSet | undefined {
    const withdrawal = this.#bundles.withdrawal
    if (withdrawal !== undefined) throw withdrawal
    return this.#bundles.value
  }

  #checkOpen(): void {
    if (this.#isClosed) throw new IdentityError('ERR_WORKLOAD_API_UNAVAILABLE', 'the JwtSource is closed')
  }
}
