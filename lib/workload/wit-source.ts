import type { JwtBundle } from '../core/bundle/jwt-bundle.js'
import { IdentityError } from '../core/errors.js'
import type { TrustDomain } from '../core/trust-domain.js'
import type { WitBundleSource } from '../core/wit/wit-svid.js'
import {
  DEFAULT_FIRST_UPDATE_TIMEOUT_MS,
  type SourceOptions,
  sourceClient,
  WatchedValue,
} from './watched-value.js'
import type { WitBundleSet, WorkloadWitSvid } from './wit-responses.js'
import type { WorkloadClient } from './workload-client.js'

/**
 * The workload's current WIT-SVIDs (with their private keys) and the WIT bundles, kept up to date from
 * the FetchWITSVID and FetchWITBundles streams as X509Source keeps X509-SVIDs: the agent rotates each
 * WIT from half its lifetime and pushes it. Use it to sign Workload Proof Tokens (`proofFetch`,
 * `proofRequest`) and, as a {@link WitBundleSource}, to verify others' proofs (`verifyProof`).
 * @example
 * const wits = await WitSource.create({ endpoint: 'unix:///run/tessera/api.sock' })
 * const fetch = proofFetch(wits)
 * await fetch('http://127.0.0.1:8080/mcp', { method: 'POST', body })
 * wits.close()
 */
export class WitSource implements WitBundleSource {
  readonly #client: WorkloadClient
  readonly #ownsClient: boolean
  readonly #svids = new WatchedValue<WorkloadWitSvid[]>('WIT-SVIDs')
  readonly #bundles = new WatchedValue<WitBundleSet>('WIT bundles')
  readonly #picker: ((svids: ReadonlyArray<WorkloadWitSvid>) => WorkloadWitSvid | undefined) | undefined
  #isClosed = false

  private constructor(client: WorkloadClient, ownsClient: boolean, options: WitSourceOptions) {
    this.#client = client
    this.#ownsClient = ownsClient
    this.#picker = options.picker
  }

  /**
   * Starts both watches and resolves once each has delivered its first update; failures before that
   * are retried with backoff.
   * @throws ERR_ENDPOINT_INVALID; ERR_WORKLOAD_API_UNAVAILABLE after `timeoutMs`; the agent's final error
   */
  static async create(options: WitSourceOptions = {}): Promise<WitSource> {
    const { client, ownsClient } = sourceClient(options)
    const source = new WitSource(client, ownsClient, options)
    const wantsSvids = options.svids !== false
    if (wantsSvids)
      source.#svids.start((onUpdate, onError) => client.watchWitSvids(onUpdate, onError), options.onError)
    source.#bundles.start((onUpdate, onError) => client.watchWitBundles(onUpdate, onError), options.onError)
    const timeoutMs = options.timeoutMs ?? DEFAULT_FIRST_UPDATE_TIMEOUT_MS
    try {
      await Promise.all([
        wantsSvids ? source.#svids.ready(timeoutMs, options.scheduler) : undefined,
        source.#bundles.ready(timeoutMs, options.scheduler),
      ])
    } catch (err) {
      source.close()
      throw err
    }
    return source
  }

  /**
   * The WIT-SVID to present: the picker's choice, else the default (first) one.
   * @throws ERR_WORKLOAD_API_UNAVAILABLE once closed; ERR_NO_IDENTITY when none fits or while withdrawn
   */
  getWitSvid(): WorkloadWitSvid {
    const svids = this.getWitSvids()
    const svid = this.#picker ? this.#picker(svids) : svids[0]
    if (svid === undefined) throw new IdentityError('ERR_NO_IDENTITY', 'no WIT-SVID matches the picker')
    return svid
  }

  /** Every current WIT-SVID, the default first. @throws as {@link WitSource.getWitSvid} */
  getWitSvids(): ReadonlyArray<WorkloadWitSvid> {
    const svids = this.#svids.value
    if (this.#isClosed || svids === undefined)
      throw new IdentityError('ERR_WORKLOAD_API_UNAVAILABLE', 'the WitSource is closed')
    const withdrawal = this.#svids.withdrawal
    if (withdrawal !== undefined) throw withdrawal
    return svids
  }

  /** The WIT bundle of exactly `td`, or undefined; undefined once closed. @throws ERR_NO_IDENTITY while withdrawn */
  getWitBundleForTrustDomain(td: TrustDomain): JwtBundle | undefined {
    if (this.#isClosed) return undefined
    const withdrawal = this.#bundles.withdrawal
    if (withdrawal !== undefined) throw withdrawal
    return this.#bundles.value?.getWitBundleForTrustDomain(td)
  }

  /** Calls `listener` after every WIT-SVID update (rotation); returns the unsubscribe function. */
  onUpdate(listener: (svids: ReadonlyArray<WorkloadWitSvid>) => void): () => void {
    return this.#svids.onUpdate(listener)
  }

  /** Stops both watches and, when the source made its own client, closes it. Safe to call more than once. */
  close(): void {
    if (this.#isClosed) return
    this.#isClosed = true
    this.#svids.stop()
    this.#bundles.stop()
    if (this.#ownsClient) this.#client.close()
  }
}

/** Options of {@link WitSource.create}. */
export interface WitSourceOptions extends SourceOptions {
  /** Chooses the WIT-SVID to present among several; default the first. */
  readonly picker?: (svids: ReadonlyArray<WorkloadWitSvid>) => WorkloadWitSvid | undefined
  /** False for a verifier that only needs the WIT bundles (no WIT-SVID of its own); default true. */
  readonly svids?: boolean
}
