import { type ClientReadableStream, credentials } from '@grpc/grpc-js'
import type { BundleSet } from '../core/bundle/bundle-source.js'
import { type Clock, systemClock } from '../core/clock.js'
import { IdentityError } from '../core/errors.js'
import { RevocationList } from '../core/revocation.js'
import { SpiffeId } from '../core/spiffe-id.js'
import type { JWTSVIDResponse__Output } from '../gen/JWTSVIDResponse.js'
import type { SpiffeWorkloadAPIClient } from '../gen/SpiffeWorkloadAPI.js'
import type { RevocationsClient } from '../gen/tessera/workload/v1/Revocations.js'
import type { WatchRevocationsResponse__Output } from '../gen/tessera/workload/v1/WatchRevocationsResponse.js'
import type { ValidateJWTSVIDResponse__Output } from '../gen/ValidateJWTSVIDResponse.js'
import { type Backoff, LinearBackoff, type Scheduler } from './backoff.js'
import { type CallContext, type Cancellable, firstMessage, securityMetadata, unaryCall } from './calls.js'
import { loadWorkloadEndpointFromEnv, parseWorkloadEndpoint, type WorkloadEndpoint } from './endpoint.js'
import {
  parseJwtBundlesResponse,
  parseJwtSvidResponse,
  parseValidateResponse,
  parseX509BundlesResponse,
  parseX509SvidResponse,
  type ValidatedJwtSvid,
  type WorkloadJwtSvid,
  type X509Context,
} from './responses.js'
import { revocationsFromWire } from './revocation-wire.js'
import { type Watch, watchStream } from './watch.js'
import {
  parseWitBundlesResponse,
  parseWitSvidResponse,
  type WitBundleSet,
  type WorkloadWitSvid,
} from './wit-responses.js'
import { revocationsApi, workloadApi } from './workload-proto.js'

/**
 * How long a one-shot call may take unless told otherwise.
 * @example
 * WorkloadClient.connect({ timeoutMs: DEFAULT_CALL_TIMEOUT_MS / 3 })
 */
export const DEFAULT_CALL_TIMEOUT_MS = 30_000

const CHANNEL_OPTIONS = {
  'grpc.max_receive_message_length': 16 * 1024 * 1024,
  // The watch's own backoff paces retries; keep the channel's reconnect delay below it.
  'grpc.initial_reconnect_backoff_ms': 250,
  'grpc.max_reconnect_backoff_ms': 1000,
}

/**
 * Options of {@link WorkloadClient.connect}.
 * @example
 * WorkloadClient.connect({ endpoint: 'unix:///run/tessera/api.sock', timeoutMs: 5000 })
 */
export interface WorkloadClientOptions {
  /** An address (`unix:///path`, `tcp://IP:port`, `/path`) or a parsed one; default `SPIFFE_ENDPOINT_SOCKET`. */
  readonly endpoint?: string | WorkloadEndpoint
  /** Deadline of one-shot calls when the call sets none; default 30 s. `Infinity` waits forever. */
  readonly timeoutMs?: number
  /** Used to refuse expired JWT-SVIDs; default the system clock. */
  readonly clock?: Clock
  /** A fresh backoff for each watch; default go-spiffe's linear 1 s … 30 s. */
  readonly newBackoff?: () => Backoff
  /** Timers of the watches' retries; default the real ones. */
  readonly scheduler?: Scheduler
}

/**
 * Per-call options.
 * @example
 * await client.fetchX509Context({ timeoutMs: 2000 })
 */
export interface CallTimeout {
  /** Deadline of this call in ms; default the client's. */
  readonly timeoutMs?: number
}

/**
 * What to fetch a JWT-SVID for.
 * @example
 * await client.fetchJwtSvids({ audience: ['api', 'audit'], spiffeId: 'spiffe://example.org/web' })
 */
export interface FetchJwtSvidParams {
  /** One or more audiences; every one is put in (and checked in) the token's `aud`. */
  readonly audience: string | ReadonlyArray<string>
  /** Only this identity's token; default every identity the caller is entitled to. */
  readonly spiffeId?: string | SpiffeId
}

/**
 * A typed client of the SPIFFE Workload API (spec §2), the Node equivalent of go-spiffe's
 * `workloadapi.Client`. Every call carries `workload.spiffe.io: true`; every answer is parsed and
 * checked as go-spiffe does; failures are IdentityErrors ({@link WorkloadApiError} for gRPC ones).
 * Watches reconnect with backoff (see `watchStream`). {@link WorkloadClient.close} cancels
 * everything still open, so a process that closes its clients can exit.
 * @example
 * const client = WorkloadClient.connect({ endpoint: 'unix:///run/tessera/api.sock' })
 * const { svids } = await client.fetchX509Context()
 * const jwt = await client.fetchJwtSvid({ audience: 'https://api.example.org' })
 * client.close()
 */
export class WorkloadClient {
  readonly #endpoint: WorkloadEndpoint
  readonly #grpc: SpiffeWorkloadAPIClient
  readonly #options: WorkloadClientOptions
  readonly #open = new Set<Cancellable>()
  readonly #watches = new Set<Watch>()
  #revocations: RevocationsClient | undefined
  #isClosed = false

  private constructor(endpoint: WorkloadEndpoint, options: WorkloadClientOptions) {
    this.#endpoint = endpoint
    this.#options = options
    const Client = workloadApi().SpiffeWorkloadAPI
    this.#grpc = new Client(endpoint.grpcTarget, credentials.createInsecure(), CHANNEL_OPTIONS)
  }

  /**
   * A client of the Workload API at `options.endpoint` (else `SPIFFE_ENDPOINT_SOCKET`). Connects lazily.
   * @throws ERR_ENDPOINT_INVALID
   */
  static connect(options: WorkloadClientOptions = {}): WorkloadClient {
    const { endpoint } = options
    const parsed =
      endpoint === undefined
        ? loadWorkloadEndpointFromEnv()
        : typeof endpoint === 'string'
          ? parseWorkloadEndpoint(endpoint)
          : endpoint
    return new WorkloadClient(parsed, options)
  }

  /** Where this client connects. */
  get endpoint(): WorkloadEndpoint {
    return this.#endpoint
  }

  /** The first FetchX509SVID message: SVIDs (first = default) and X.509 bundles. @throws see `parseX509SvidResponse`, WorkloadApiError */
  async fetchX509Context(options: CallTimeout = {}): Promise<X509Context> {
    return firstMessage(
      this.#call('FetchX509SVID', options),
      (md, o) => this.#grpc.FetchX509SVID({}, md, o),
      parseX509SvidResponse,
    )
  }

  /** Every X.509 context as the agent pushes it, until the watch is stopped; reconnects with backoff. */
  watchX509Context(onUpdate: (context: X509Context) => void, onError: (err: IdentityError) => void): Watch {
    const open = () => this.#grpc.FetchX509SVID({}, securityMetadata())
    return this.#watch('FetchX509SVID', open, (m) => onUpdate(parseX509SvidResponse(m)), onError)
  }

  /** The first FetchX509Bundles message: the X.509 bundles the caller may see. @throws ERR_BUNDLE_MALFORMED, WorkloadApiError */
  async fetchX509Bundles(options: CallTimeout = {}): Promise<BundleSet> {
    return firstMessage(
      this.#call('FetchX509Bundles', options),
      (md, o) => this.#grpc.FetchX509Bundles({}, md, o),
      parseX509BundlesResponse,
    )
  }

  /** Every X.509 bundle set as the agent pushes it; reconnects with backoff. */
  watchX509Bundles(onUpdate: (bundles: BundleSet) => void, onError: (err: IdentityError) => void): Watch {
    const open = () => this.#grpc.FetchX509Bundles({}, securityMetadata())
    return this.#watch('FetchX509Bundles', open, (m) => onUpdate(parseX509BundlesResponse(m)), onError)
  }

  /** The first FetchJWTBundles message: the JWT bundles the caller may see. @throws ERR_BUNDLE_MALFORMED, WorkloadApiError */
  async fetchJwtBundles(options: CallTimeout = {}): Promise<BundleSet> {
    return firstMessage(
      this.#call('FetchJWTBundles', options),
      (md, o) => this.#grpc.FetchJWTBundles({}, md, o),
      parseJwtBundlesResponse,
    )
  }

  /** Every JWT bundle set as the agent pushes it; reconnects with backoff. */
  watchJwtBundles(onUpdate: (bundles: BundleSet) => void, onError: (err: IdentityError) => void): Watch {
    const open = () => this.#grpc.FetchJWTBundles({}, securityMetadata())
    return this.#watch('FetchJWTBundles', open, (m) => onUpdate(parseJwtBundlesResponse(m)), onError)
  }

  /** The first FetchWITSVID message: every WIT-SVID with its key (first = default). @throws see `parseWitSvidResponse`, WorkloadApiError */
  async fetchWitSvids(options: CallTimeout = {}): Promise<WorkloadWitSvid[]> {
    return firstMessage(
      this.#call('FetchWITSVID', options),
      (md, o) => this.#grpc.FetchWITSVID({}, md, o),
      parseWitSvidResponse,
    )
  }

  /** Every WIT-SVID set as the agent pushes it (rotation followed); reconnects with backoff. */
  watchWitSvids(onUpdate: (svids: WorkloadWitSvid[]) => void, onError: (err: IdentityError) => void): Watch {
    const open = () => this.#grpc.FetchWITSVID({}, securityMetadata())
    return this.#watch('FetchWITSVID', open, (m) => onUpdate(parseWitSvidResponse(m)), onError)
  }

  /** The first FetchWITBundles message. @throws ERR_BUNDLE_MALFORMED, WorkloadApiError */
  async fetchWitBundles(options: CallTimeout = {}): Promise<WitBundleSet> {
    return firstMessage(
      this.#call('FetchWITBundles', options),
      (md, o) => this.#grpc.FetchWITBundles({}, md, o),
      parseWitBundlesResponse,
    )
  }

  /** Every WIT bundle set as the agent pushes it; reconnects with backoff. */
  watchWitBundles(onUpdate: (bundles: WitBundleSet) => void, onError: (err: IdentityError) => void): Watch {
    const open = () => this.#grpc.FetchWITBundles({}, securityMetadata())
    return this.#watch('FetchWITBundles', open, (m) => onUpdate(parseWitBundlesResponse(m)), onError)
  }

  /** The default (first) JWT-SVID for the audiences. @throws see {@link WorkloadClient.fetchJwtSvids} */
  async fetchJwtSvid(params: FetchJwtSvidParams, options: CallTimeout = {}): Promise<WorkloadJwtSvid> {
    const [first] = await this.fetchJwtSvids(params, options)
    return first as WorkloadJwtSvid
  }

  /**
   * One JWT-SVID per entitled identity (or only `spiffeId`'s), each checked by `parseJwtSvidResponse`.
   * @throws ERR_REQUEST_INVALID (no or empty audience), ERR_ID_INVALID, the parse errors, WorkloadApiError
   */
  async fetchJwtSvids(params: FetchJwtSvidParams, options: CallTimeout = {}): Promise<WorkloadJwtSvid[]> {
    const audience = typeof params.audience === 'string' ? [params.audience] : [...params.audience]
    if (audience.length === 0 || audience.some((a) => typeof a !== 'string' || a === ''))
      throw new IdentityError('ERR_REQUEST_INVALID', 'a JWT-SVID needs one or more non-empty audiences')
    const { spiffeId: wanted } = params
    const spiffeId = typeof wanted === 'string' ? SpiffeId.parse(wanted) : wanted
    const request = { audience, spiffe_id: spiffeId?.toString() ?? '' }
    const response = await unaryCall<JWTSVIDResponse__Output>(
      this.#call('FetchJWTSVID', options),
      (md, o, cb) => this.#grpc.FetchJWTSVID(request, md, o, cb),
    )
    return parseJwtSvidResponse(
      response,
      { audience, spiffeId },
      (this.#options.clock ?? systemClock).nowMs(),
    )
  }

  /** Has the agent validate a JWT-SVID for `audience`. @throws WorkloadApiError (its code says why), ERR_JWT_INVALID */
  async validateJwtSvid(
    token: string,
    audience: string,
    options: CallTimeout = {},
  ): Promise<ValidatedJwtSvid> {
    const request = { svid: token, audience }
    const response = await unaryCall<ValidateJWTSVIDResponse__Output>(
      this.#call('ValidateJWTSVID', options),
      (md, o, cb) => this.#grpc.ValidateJWTSVID(request, md, o, cb),
    )
    return parseValidateResponse(response)
  }

  /**
   * Every revocation list the agent pushes on Tessera's `tessera.workload.v1.Revocations` service
   * (DESIGN §11; not part of the SPIFFE Workload API: another agent answers UNIMPLEMENTED, which ends
   * the watch); reconnects with backoff.
   */
  watchRevocations(onUpdate: (list: RevocationList) => void, onError: (err: IdentityError) => void): Watch {
    const open = () => this.#revocationsClient().WatchRevocations({}, securityMetadata())
    return this.#watch<WatchRevocationsResponse__Output>(
      'WatchRevocations',
      open,
      (m) => onUpdate(RevocationList.of(revocationsFromWire(m.revocations))),
      onError,
    )
  }

  /** The Revocations client, on this client's channel. */
  #revocationsClient(): RevocationsClient {
    const Client = revocationsApi().tessera.workload.v1.Revocations
    this.#revocations ??= new Client(this.#endpoint.grpcTarget, credentials.createInsecure(), {
      ...CHANNEL_OPTIONS,
      channelOverride: this.#grpc.getChannel(),
    })
    return this.#revocations
  }

  /** Stops every watch, cancels every open call and closes the channel. Safe to call more than once. */
  close(): void {
    if (this.#isClosed) return
    this.#isClosed = true
    for (const watch of this.#watches) watch.stop()
    for (const call of this.#open) call.cancel()
    this.#grpc.close()
  }

  #call(method: string, options: CallTimeout): CallContext {
    if (this.#isClosed)
      throw new IdentityError('ERR_WORKLOAD_API_UNAVAILABLE', `${method}: the client is closed`)
    const timeoutMs = options.timeoutMs ?? this.#options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS
    const deadline = Number.isFinite(timeoutMs) ? { deadline: Date.now() + timeoutMs } : {}
    return { method, options: deadline, open: this.#open }
  }

  #watch<M>(
    method: string,
    open: () => ClientReadableStream<M>,
    onMessage: (message: M) => void,
    onError: (err: IdentityError) => void,
  ): Watch {
    if (this.#isClosed)
      throw new IdentityError('ERR_WORKLOAD_API_UNAVAILABLE', `${method}: the client is closed`)
    const backoff = this.#options.newBackoff?.() ?? new LinearBackoff()
    const scheduler = this.#options.scheduler
    const watch = watchStream<M>({
      method,
      open,
      onMessage,
      onError,
      backoff,
      ...(scheduler && { scheduler }),
    })
    this.#watches.add(watch)
    void watch.done.then(() => this.#watches.delete(watch))
    return watch
  }
}
