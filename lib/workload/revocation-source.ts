import { RevocationList, type RevocationListSource } from '../core/revocation.js'
import {
  DEFAULT_FIRST_UPDATE_TIMEOUT_MS,
  type SourceOptions,
  sourceClient,
  WatchedValue,
} from './watched-value.js'
import type { WorkloadClient } from './workload-client.js'

/**
 * The revocations a Tessera agent serves (DESIGN §11), kept up to date from its
 * `tessera.workload.v1.Revocations/WatchRevocations` stream: hand it to the verifiers
 * (`verifyJwtPeer`, `verifyX509Peer`, `createMtlsServer`, `createGuard` take `revocations`) and they
 * refuse a revoked credential with ERR_CREDENTIAL_REVOKED. While the agent cannot be reached the last
 * list is kept (a revocation made meanwhile is not known here until the stream is back).
 * @example
 * const revocations = await RevocationSource.create({ endpoint: 'unix:///run/tessera/api.sock' })
 * const svid = await verifyJwtPeer(token, bundles, 'my-tool', authorizeAny(), { revocations })
 * revocations.close()
 */
export class RevocationSource implements RevocationListSource {
  readonly #client: WorkloadClient
  readonly #ownsClient: boolean
  readonly #list = new WatchedValue<RevocationList>('revocations')
  #isClosed = false

  private constructor(client: WorkloadClient, ownsClient: boolean) {
    this.#client = client
    this.#ownsClient = ownsClient
  }

  /**
   * Starts the watch and resolves once the first list arrived; failures before that are retried with backoff.
   * @throws ERR_ENDPOINT_INVALID; ERR_WORKLOAD_API_UNAVAILABLE after `timeoutMs`; the agent's final
   *   error (UNIMPLEMENTED from an agent that is not Tessera's)
   */
  static async create(options: SourceOptions = {}): Promise<RevocationSource> {
    const { client, ownsClient } = sourceClient(options)
    const source = new RevocationSource(client, ownsClient)
    source.#list.start((onUpdate, onError) => client.watchRevocations(onUpdate, onError), options.onError)
    try {
      await source.#list.ready(options.timeoutMs ?? DEFAULT_FIRST_UPDATE_TIMEOUT_MS, options.scheduler)
    } catch (err) {
      source.close()
      throw err
    }
    return source
  }

  /**
   * The latest list (empty once closed).
   * @throws ERR_NO_IDENTITY while the agent has withdrawn it (the stream ended with PERMISSION_DENIED)
   */
  getRevocations(): RevocationList {
    const withdrawal = this.#list.withdrawal
    if (withdrawal !== undefined) throw withdrawal
    return this.#list.value ?? RevocationList.EMPTY
  }

  /** Calls `listener` after every new list; returns the unsubscribe function. */
  onUpdate(listener: () => void): () => void {
    return this.#list.onUpdate(() => listener())
  }

  /** Stops the watch and, when the source made its own client, closes it. Safe to call more than once. */
  close(): void {
    if (this.#isClosed) return
    this.#isClosed = true
    this.#list.stop()
    if (this.#ownsClient) this.#client.close()
  }
}
