import type { KeyObject } from 'node:crypto'
import { type ChannelCredentials, type ClientOptions, Metadata, type ServiceError } from '@grpc/grpc-js'
import type { Logger } from 'pino'
import type { AttestAgentResponse__Output } from '../../common/gen/tessera/agent/v1/AttestAgentResponse.js'
import type { BatchNewX509SvidResponse__Output } from '../../common/gen/tessera/agent/v1/BatchNewX509SvidResponse.js'
import type { NewJwtSvidResponse__Output } from '../../common/gen/tessera/agent/v1/NewJwtSvidResponse.js'
import type { NewTaskTokenRequest } from '../../common/gen/tessera/agent/v1/NewTaskTokenRequest.js'
import type { NewTaskTokenResponse__Output } from '../../common/gen/tessera/agent/v1/NewTaskTokenResponse.js'
import type { NewWitSvidResponse__Output } from '../../common/gen/tessera/agent/v1/NewWitSvidResponse.js'
import type { NodeClient } from '../../common/gen/tessera/agent/v1/Node.js'
import type { PendingWorkload } from '../../common/gen/tessera/agent/v1/PendingWorkload.js'
import type { RenewAgentResponse__Output } from '../../common/gen/tessera/agent/v1/RenewAgentResponse.js'
import type { ReportCheckpointResponse__Output } from '../../common/gen/tessera/agent/v1/ReportCheckpointResponse.js'
import type { ReportPendingResponse__Output } from '../../common/gen/tessera/agent/v1/ReportPendingResponse.js'
import { bundleFromProto, svidFromProto } from '../../common/grpc/agent-api-convert.js'
import { agentApi } from '../../common/grpc/protos.js'
import type { SpiffeBundle } from '../../lib/core/bundle/spiffe-bundle.js'
import { X509Bundle } from '../../lib/core/bundle/x509-bundle.js'
import { type Clock, systemClock } from '../../lib/core/clock.js'
import { IdentityError } from '../../lib/core/errors.js'
import type { TrustDomain } from '../../lib/core/trust-domain.js'
import type { Certificate } from '../../lib/core/x509/certificate.js'
import { createCsr } from '../../lib/core/x509/csr.js'
import { generateP256PrivateKey } from '../../lib/core/x509/generate-key.js'
import type { X509Svid } from '../../lib/core/x509/x509-svid.js'
import { AWAITING_APPROVAL_KEY } from '../../lib/grpc/status.js'
import {
  checkAgentSvid,
  type IssuanceResult,
  type JwtSvidResult,
  type TaskCallWait,
  type TaskTokenResult,
  toIssuanceResult,
} from './results.js'
import {
  type BackoffOptions,
  DEFAULT_BACKOFF,
  type SyncHandlers,
  type SyncSnapshot,
  SyncStream,
} from './sync-stream.js'
import { pinServerCertificate, ServerTls } from './tls.js'

/** Longest a NewTaskToken call may wait for a human when the workload set no deadline. */
const MAX_TASK_WAIT_MS = 60 * 60_000

export type { IssuanceResult, JwtSvidResult, TaskTokenResult } from './results.js'
export type { SyncHandlers, SyncSnapshot } from './sync-stream.js'

/** How to reach and trust the server. */
export interface ServerClientOptions {
  /** `host:port` of the agent API. */
  readonly address: string
  readonly trustDomain: TrustDomain
  /** PEM CA certificates to trust the server with before the first attestation (`--trust-bundle`). */
  readonly trustBundlePem?: string
  /** Trust the first server certificate seen (its SPIFFE ID is still checked). Development only. */
  readonly insecureBootstrap?: boolean
  readonly log: Logger
  readonly clock?: Clock
  readonly backoff?: BackoffOptions
  /** Deadline of each unary call (default 10 s). */
  readonly callTimeoutMs?: number
}

/** The agent's identity after attestation or renewal. */
export interface AgentCredentials {
  readonly svid: X509Svid
  /** The own trust domain's bundle. */
  readonly bundle: SpiffeBundle
}

/** One CSR to sign for an authorized entry. */
export interface BatchParam {
  readonly entryId: string
  readonly csrDer: Uint8Array
}

/** Largest message the client accepts (a snapshot of many thousands of entries). */
export const MAX_CLIENT_RECEIVE_BYTES = 64 * 1024 * 1024

/**
 * The agent's client of the server's agent API. Failed calls reject with the grpc-js `ServiceError`
 * (`err.code` is the gRPC status; `errorCodeOf(err)` the server's stable code); a bad answer from the
 * server rejects with an IdentityError. Each identity change (attest, renew, {@link ServerClient.useIdentity})
 * opens a new channel, so the new SVID is presented at once, and moves an open sync stream onto it.
 */
export class ServerClient {
  readonly #opts: ServerClientOptions
  readonly #tls: ServerTls
  readonly #clock: Clock
  readonly #streams = new Set<SyncStream>()
  #client: NodeClient | undefined
  #svid: X509Svid | undefined

  constructor(opts: ServerClientOptions) {
    this.#opts = opts
    this.#clock = opts.clock ?? systemClock
    this.#tls = new ServerTls(opts.trustDomain, this.#clock)
    if (opts.trustBundlePem !== undefined)
      this.#tls.setBundle(X509Bundle.parsePem(opts.trustDomain, opts.trustBundlePem))
  }

  /** The current agent SVID, if any. */
  get svid(): X509Svid | undefined {
    return this.#svid
  }

  /**
   * Attests with a join token: a fresh P-256 key and CSR; returns the agent SVID and the bundle, and
   * uses both from then on.
   * @throws ServiceError (PERMISSION_DENIED for a used, unknown or expired token); IdentityError
   *   (ERR_BUNDLE_NOT_FOUND without a trust bundle or insecure bootstrap; a bad answer)
   */
  async attest(joinToken: string): Promise<AgentCredentials> {
    const credentials = await this.#bootstrapCredentials()
    const client = this.#newClient(credentials)
    try {
      const key = await generateP256PrivateKey()
      const res = await this.#unary<AttestAgentResponse__Output>((cb) =>
        client.AttestAgent({ join_token: joinToken, csr: createCsr(key) }, this.#callOptions(), cb),
      )
      const bundle = bundleFromProto(requireField(res.bundle, 'bundle'))
      const svid = checkAgentSvid(
        svidFromProto(res.svid, key),
        bundle,
        this.#opts.trustDomain,
        this.#clock.nowMs(),
      )
      this.useIdentity(svid, bundle)
      return { svid, bundle }
    } finally {
      client.close()
    }
  }

  /** Uses a persisted SVID (and, if given, bundle) from now on, e.g. after an agent restart. */
  useIdentity(svid: X509Svid, bundle?: SpiffeBundle): void {
    if (bundle) this.#tls.setBundle(bundle.toX509Bundle())
    this.#tls.setIdentity(svid)
    this.#svid = svid
    const previous = this.#client
    this.#client = undefined
    for (const stream of this.#streams) stream.restart()
    previous?.close()
  }

  /**
   * Renews the agent SVID for a fresh key; the previous one is refused by the server from then on.
   * @throws ServiceError; IdentityError (ERR_X509_SVID_INVALID before any identity, or on a bad answer)
   */
  async renew(): Promise<X509Svid> {
    const current = this.#requireSvid()
    const key: KeyObject = await generateP256PrivateKey()
    const client = this.#channel()
    const res = await this.#unary<RenewAgentResponse__Output>((cb) =>
      client.RenewAgent({ csr: createCsr(key) }, this.#callOptions(), cb),
    )
    const svid = svidFromProto(res.svid, key, current.id)
    this.useIdentity(svid)
    return svid
  }

  /**
   * Follows SyncAuthorized until stopped: snapshots go to `handlers.onSnapshot` (the own bundle is also
   * taken as the new trust bundle), failures reconnect with backoff, and a refusal (PERMISSION_DENIED)
   * stops the stream and is reported to `handlers.onRefused`.
   */
  sync(handlers: SyncHandlers): SyncStream {
    this.#requireSvid()
    const stream = new SyncStream(
      {
        open: () => this.#channel().SyncAuthorized({}, new Metadata(), {}),
        observe: (snapshot) => this.#observe(snapshot),
        log: this.#opts.log,
        backoff: this.#opts.backoff ?? DEFAULT_BACKOFF,
      },
      handlers,
    )
    this.#streams.add(stream)
    void stream.done.then(() => this.#streams.delete(stream))
    stream.start()
    return stream
  }

  /**
   * Asks for X509-SVIDs; results are in the order of `params`, each signed or refused on its own.
   * @throws ServiceError when the whole call fails; IdentityError on a bad answer
   */
  async batchNewX509Svid(params: ReadonlyArray<BatchParam>): Promise<IssuanceResult[]> {
    this.#requireSvid()
    const client = this.#channel()
    const request = { params: params.map((p) => ({ entry_id: p.entryId, csr: Buffer.from(p.csrDer) })) }
    const res = await this.#unary<BatchNewX509SvidResponse__Output>((cb) =>
      client.BatchNewX509Svid(request, this.#callOptions(), cb),
    )
    if (res.results.length !== params.length)
      throw new IdentityError('ERR_REQUEST_INVALID', 'the server answered a different number of items')
    return res.results.map(toIssuanceResult)
  }

  /** A JWT-SVID for an authorized entry. @throws ServiceError (PERMISSION_DENIED when not authorized) */
  async newJwtSvid(entryId: string, audience: ReadonlyArray<string>): Promise<JwtSvidResult> {
    this.#requireSvid()
    const client = this.#channel()
    const res = await this.#unary<NewJwtSvidResponse__Output>((cb) =>
      client.NewJwtSvid({ entry_id: entryId, audience: [...audience] }, this.#callOptions(), cb),
    )
    return {
      token: res.token,
      spiffeId: res.spiffe_id,
      expiresAtMs: res.expires_at * 1000,
      issuedAtMs: res.issued_at * 1000,
    }
  }

  /** A WIT-SVID for an authorized entry, binding `publicKeyDer`. @throws ServiceError */
  async newWitSvid(entryId: string, publicKeyDer: Buffer): Promise<JwtSvidResult> {
    this.#requireSvid()
    const client = this.#channel()
    const res = await this.#unary<NewWitSvidResponse__Output>((cb) =>
      client.NewWitSvid({ entry_id: entryId, public_key: publicKeyDer }, this.#callOptions(), cb),
    )
    return {
      token: res.token,
      spiffeId: res.spiffe_id,
      expiresAtMs: res.expires_at * 1000,
      issuedAtMs: res.issued_at * 1000,
    }
  }

  /**
   * A task token for an authorized entry (DESIGN §11). With `wait` (the workload's call), the call
   * lasts until the workload's deadline (a scope that needs a human waits for one), ends when the
   * workload's call is cancelled, and passes the server's "awaiting approval" metadata on.
   * @throws ServiceError
   */
  async newTaskToken(request: NewTaskTokenRequest, wait?: TaskCallWait): Promise<TaskTokenResult> {
    this.#requireSvid()
    const client = this.#channel()
    const options =
      wait === undefined
        ? this.#callOptions()
        : { deadline: Math.min(wait.deadlineMs, Date.now() + MAX_TASK_WAIT_MS) }
    const res = await this.#unary<NewTaskTokenResponse__Output>((cb) => {
      const call = client.NewTaskToken(request, options, cb)
      if (wait === undefined) return call
      const cancel = () => call.cancel()
      wait.signal.addEventListener('abort', cancel, { once: true })
      call.on('status', () => wait.signal.removeEventListener('abort', cancel))
      call.on('metadata', (md) => {
        const requestId = md.get(AWAITING_APPROVAL_KEY)[0]
        if (typeof requestId === 'string' && requestId !== '') wait.onAwaiting(requestId)
      })
      return call
    })
    return {
      token: res.token,
      taskId: res.task_id,
      spiffeId: res.spiffe_id,
      expiresAtMs: res.expires_at * 1000,
      issuedAtMs: res.issued_at * 1000,
    }
  }

  /** Tells the server a task has ended (`ended`: EndTask; `exited`: its process exited). @throws ServiceError */
  async endTask(taskId: string, reason: 'ended' | 'exited'): Promise<void> {
    this.#requireSvid()
    const client = this.#channel()
    await this.#unary<unknown>((cb) => client.EndTask({ task_id: taskId, reason }, this.#callOptions(), cb))
  }

  /**
   * Reports Workload API callers that matched no entry (DESIGN §10), with how many the agent dropped.
   * @throws ServiceError when the call fails
   */
  async reportPending(workloads: ReadonlyArray<PendingWorkload>, dropped: number): Promise<void> {
    this.#requireSvid()
    const client = this.#channel()
    await this.#unary<ReportPendingResponse__Output>((cb) =>
      client.ReportPending({ workloads: [...workloads], dropped }, this.#callOptions(), cb),
    )
  }

  /**
   * Sends a signed audit checkpoint (DESIGN §10): the agent's own, or a workload's it forwards.
   * @throws ServiceError when the call fails or the server refuses it
   */
  async reportCheckpoint(note: string, x5c: ReadonlyArray<Uint8Array>): Promise<void> {
    this.#requireSvid()
    const client = this.#channel()
    const request = { note, x5c: x5c.map((der) => Buffer.from(der)) }
    await this.#unary<ReportCheckpointResponse__Output>((cb) =>
      client.ReportCheckpoint(request, this.#callOptions(), cb),
    )
  }

  /** Stops every sync stream and closes the channel. */
  close(): void {
    for (const stream of [...this.#streams]) stream.stop()
    this.#client?.close()
    this.#client = undefined
  }

  #observe(snapshot: SyncSnapshot): void {
    const own = snapshot.bundles[0]
    if (own?.trustDomain.equals(this.#opts.trustDomain)) this.#tls.setBundle(own.toX509Bundle())
  }

  async #bootstrapCredentials(): Promise<ChannelCredentials> {
    if (this.#tls.bundle) return this.#tls.credentials(false)
    if (!this.#opts.insecureBootstrap)
      throw new IdentityError('ERR_BUNDLE_NOT_FOUND', 'no trust bundle: give one, or use insecure bootstrap')
    const pinned: Certificate = await pinServerCertificate(this.#opts.address, this.#opts.trustDomain)
    this.#opts.log.warn(
      { serverAddress: this.#opts.address, serial: pinned.serialHex },
      'INSECURE bootstrap: trusting the server certificate without verifying its chain (development only).',
    )
    return this.#tls.pinnedCredentials(pinned)
  }

  #channel(): NodeClient {
    this.#client ??= this.#newClient(this.#tls.credentials(true))
    return this.#client
  }

  #newClient(credentials: ChannelCredentials): NodeClient {
    const Node = agentApi().tessera.agent.v1.Node
    const options: ClientOptions = {
      // Own subchannels: a channel made after a renewal must not reuse a connection with the old SVID.
      'grpc.use_local_subchannel_pool': 1,
      'grpc.ssl_target_name_override': this.#opts.trustDomain.name,
      'grpc.max_receive_message_length': MAX_CLIENT_RECEIVE_BYTES,
    }
    return new Node(this.#opts.address, credentials, options)
  }

  #callOptions(): { deadline: number } {
    return { deadline: Date.now() + (this.#opts.callTimeoutMs ?? 10_000) }
  }

  #requireSvid(): X509Svid {
    if (!this.#svid)
      throw new IdentityError('ERR_X509_SVID_INVALID', 'the agent has no SVID yet: attest first')
    return this.#svid
  }

  #unary<T>(start: (cb: (err: ServiceError | null, res?: T) => void) => unknown): Promise<T> {
    return new Promise((resolve, reject) => {
      start((err, res) => {
        if (err) reject(err)
        else if (res === undefined)
          reject(new IdentityError('ERR_REQUEST_INVALID', 'the server sent no answer'))
        else resolve(res)
      })
    })
  }
}

function requireField<T>(value: T | null | undefined, name: string): T {
  if (value === null || value === undefined)
    throw new IdentityError('ERR_REQUEST_INVALID', `the server's answer has no ${name}`)
  return value
}
