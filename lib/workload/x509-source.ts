import { BundleSet, type X509BundleSource } from '../core/bundle/bundle-source.js'
import type { X509Bundle } from '../core/bundle/x509-bundle.js'
import { IdentityError } from '../core/errors.js'
import type { TrustDomain } from '../core/trust-domain.js'
import type { X509Svid } from '../core/x509/x509-svid.js'
import type { X509Context } from './responses.js'
import {
  DEFAULT_FIRST_UPDATE_TIMEOUT_MS,
  type SourceOptions,
  sourceClient,
  WatchedValue,
} from './watched-value.js'
import type { WorkloadClient } from './workload-client.js'

/**
 * Gives the X509-SVID to present (the source's current one).
 * @example
 * function present(source: X509SvidSource) {
 *   const svid = source.getX509Svid()
 *   return { key: svid.privateKey, chain: svid.certificates }
 * }
 */
export interface X509SvidSource {
  /** @throws IdentityError when there is none */
  getX509Svid(): X509Svid
}

/**
 * Options of {@link X509Source.create}.
 * @example
 * await X509Source.create({ picker: (svids) => svids.find((s) => s.hint === 'internal') })
 */
export interface X509SourceOptions extends SourceOptions {
  /** Chooses the SVID {@link X509Source.getX509Svid} returns; default the first (the default identity). */
  readonly picker?: (svids: ReadonlyArray<X509Svid>) => X509Svid | undefined
}

/**
 * The current X509-SVIDs and X.509 bundles of this workload, kept up to date from the Workload API's
 * FetchX509SVID stream (rotation, entry changes, bundle changes), the Node equivalent of go-spiffe's
 * `workloadapi.X509Source`. Each update replaces everything: a bundle the agent stops sending is no
 * longer trusted. Bundles of different trust domains are never merged. When the agent ends the stream
 * with PERMISSION_DENIED (Workload API §5.2.1: the workload no longer has an identity), the SVIDs and
 * bundles it had sent are redacted: the getters throw ERR_NO_IDENTITY until the stream, reopened
 * with backoff, brings a new context.
 * @example
 * const source = await X509Source.create({ endpoint: 'unix:///run/tessera/api.sock' })
 * const svid = source.getX509Svid()
 * const bundle = source.getX509BundleForTrustDomain(svid.id.trustDomain)
 * const unsubscribe = source.onUpdate((context) => console.log('rotated', context.svids[0]?.id.toString()))
 * source.close()
 */
export class X509Source implements X509SvidSource, X509BundleSource {
  readonly #client: WorkloadClient
  readonly #ownsClient: boolean
  readonly #picker: X509SourceOptions['picker']
  readonly #context = new WatchedValue<X509Context>('X.509 context')
  #isClosed = false

  private constructor(client: WorkloadClient, ownsClient: boolean, picker: X509SourceOptions['picker']) {
    this.#client = client
    this.#ownsClient = ownsClient
    this.#picker = picker
  }

  /**
   * Starts watching and resolves once the first X.509 context has arrived. Failures before that
   * (PERMISSION_DENIED while the entry propagates, an agent not up yet) are retried with backoff.
   * @throws ERR_ENDPOINT_INVALID; ERR_WORKLOAD_API_UNAVAILABLE after `timeoutMs`; the agent's final
   *   error (INVALID_ARGUMENT, UNIMPLEMENTED) as a WorkloadApiError
   */
  static async create(options: X509SourceOptions = {}): Promise<X509Source> {
    const { client, ownsClient } = sourceClient(options)
    const source = new X509Source(client, ownsClient, options.picker)
    source.#context.start((onUpdate, onError) => client.watchX509Context(onUpdate, onError), options.onError)
    try {
      await source.#context.ready(options.timeoutMs ?? DEFAULT_FIRST_UPDATE_TIMEOUT_MS, options.scheduler)
    } catch (err) {
      source.close()
      throw err
    }
    return source
  }

  /**
   * The current context: every SVID (first = default) and the bundles.
   * @throws ERR_WORKLOAD_API_UNAVAILABLE once closed; ERR_NO_IDENTITY while the agent has withdrawn
   *   the identity (Workload API §5.2.1: FetchX509SVID ended with PERMISSION_DENIED, the SVIDs it had
   *   sent are redacted), until the stream, reopened with backoff, brings a new context
   */
  getX509Context(): X509Context {
    const context = this.#context.value
    if (this.#isClosed || context === undefined)
      throw new IdentityError('ERR_WORKLOAD_API_UNAVAILABLE', 'the X509Source is closed')
    const withdrawal = this.#context.withdrawal
    if (withdrawal !== undefined) throw withdrawal
    return context
  }

  /**
   * The SVID to present: the picker's choice, else the default (first) one.
   * @throws ERR_WORKLOAD_API_UNAVAILABLE once closed; ERR_NO_IDENTITY when the picker finds none or
   *   while the identity is withdrawn (see {@link X509Source.getX509Context})
   */
  getX509Svid(): X509Svid {
    const { svids } = this.getX509Context()
    const svid = this.#picker ? this.#picker(svids) : svids[0]
    if (svid === undefined) throw new IdentityError('ERR_NO_IDENTITY', 'no X509-SVID matches the picker')
    return svid
  }

  /** Every current SVID, the default first. @throws ERR_WORKLOAD_API_UNAVAILABLE once closed; ERR_NO_IDENTITY while withdrawn */
  getX509Svids(): ReadonlyArray<X509Svid> {
    return this.getX509Context().svids
  }

  /**
   * The X.509 bundle of exactly `td` (own or federated), or undefined; undefined for everything once closed.
   * @throws ERR_NO_IDENTITY while the identity is withdrawn (the bundles came with the redacted SVIDs)
   */
  getX509BundleForTrustDomain(td: TrustDomain): X509Bundle | undefined {
    return this.#isClosed ? undefined : this.#current()?.bundles.getX509BundleForTrustDomain(td)
  }

  /** The current bundles (empty once closed). @throws ERR_NO_IDENTITY while the identity is withdrawn */
  get bundles(): BundleSet {
    return this.#isClosed ? BundleSet.empty() : (this.#current()?.bundles ?? BundleSet.empty())
  }

  /** Calls `listener` after every update (rotation, new entry, bundle change); returns the unsubscribe function. */
  onUpdate(listener: (context: X509Context) => void): () => void {
    return this.#context.onUpdate(listener)
  }

  /** Stops watching and, when the source made its own client, closes it. Safe to call more than once. */
  close(): void {
    if (this.#isClosed) return
    this.#isClosed = true
    this.#context.stop()
    if (this.#ownsClient) this.#client.close()
  }

  #current(): X509Context | undefined {
    const withdrawal = this.#context.withdrawal
    if (withdrawal !== undefined) throw withdrawal
    return this.#context.value
  }
}
