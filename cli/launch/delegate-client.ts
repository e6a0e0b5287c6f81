import { type ClientReadableStream, credentials, Metadata, type ServiceError } from '@grpc/grpc-js'
import type { DelegatedIdentityClient } from '../../common/gen/tessera/agent/v1/DelegatedIdentity.js'
import type { DelegatedJWTBundlesResponse__Output } from '../../common/gen/tessera/agent/v1/DelegatedJWTBundlesResponse.js'
import type { DelegatedJWTSVIDsResponse__Output } from '../../common/gen/tessera/agent/v1/DelegatedJWTSVIDsResponse.js'
import type { DelegatedSubject } from '../../common/gen/tessera/agent/v1/DelegatedSubject.js'
import type { DelegatedX509SVIDsResponse__Output } from '../../common/gen/tessera/agent/v1/DelegatedX509SVIDsResponse.js'
import type { BeginTaskRequest } from '../../common/gen/tessera/workload/v1/BeginTaskRequest.js'
import type { BeginTaskResponse__Output } from '../../common/gen/tessera/workload/v1/BeginTaskResponse.js'
import type { EndTaskRequest } from '../../common/gen/tessera/workload/v1/EndTaskRequest.js'
import type { EndTaskResponse__Output } from '../../common/gen/tessera/workload/v1/EndTaskResponse.js'
import { delegatedApi } from '../../common/grpc/protos.js'
import type { WorkloadEndpoint } from '../../lib/workload/endpoint.js'

/** The process a delegated call is for: its pid, its start time, the launch name. */
export interface Subject {
  readonly pid: number
  readonly startTime: string
  readonly launchName: string
}

/** Something to stop: a stream the caller no longer wants. */
export interface Cancellable {
  cancel(): void
}

/** Handlers of a delegated stream. */
export interface StreamHandlers<T> {
  onMessage(message: T): void
  /** The stream ended with this status (the agent refused, or the subject exited). */
  onError(err: ServiceError): void
}

function headers(): Metadata {
  const md = new Metadata()
  md.set('workload.spiffe.io', 'true')
  return md
}

function toWire(subject: Subject): DelegatedSubject {
  return { pid: subject.pid, start_time: subject.startTime, launch_name: subject.launchName }
}

/**
 * A client of the agent's `tessera.agent.v1.DelegatedIdentity` service (on its Workload API socket):
 * the launcher obtains, for each process of the tree it started, the SVIDs the agent grants that
 * process plus the `tessera:launch:NAME` selector.
 */
export class DelegateClient {
  readonly #grpc: DelegatedIdentityClient

  constructor(agent: WorkloadEndpoint) {
    const Client = delegatedApi().tessera.agent.v1.DelegatedIdentity
    this.#grpc = new Client(agent.grpcTarget, credentials.createInsecure())
  }

  /** X509-SVIDs of `subject`, now and on every change. */
  subscribeX509(subject: Subject, h: StreamHandlers<DelegatedX509SVIDsResponse__Output>): Cancellable {
    return watch(this.#grpc.SubscribeToX509SVIDs({ subject: toWire(subject) }, headers()), h)
  }

  /** JWT bundles `subject` may see, now and on every change. */
  subscribeJwtBundles(subject: Subject, h: StreamHandlers<DelegatedJWTBundlesResponse__Output>): Cancellable {
    return watch(this.#grpc.SubscribeToJWTBundles({ subject: toWire(subject) }, headers()), h)
  }

  /** JWT-SVIDs of `subject` for `audience` (only `spiffeId`'s when not empty). */
  fetchJwt(
    subject: Subject,
    audience: readonly string[],
    spiffeId: string,
    deadlineMs: number,
  ): Promise<DelegatedJWTSVIDsResponse__Output> {
    return new Promise((resolve, reject) => {
      this.#grpc.FetchJWTSVIDs(
        { subject: toWire(subject), audience: [...audience], spiffe_id: spiffeId },
        headers(),
        { deadline: Date.now() + deadlineMs },
        (err, res) => (err || !res ? reject(err) : resolve(res)),
      )
    })
  }

  /** BeginTask as `subject` (the request as Tasks.BeginTask takes it). */
  beginTask(
    subject: Subject,
    request: BeginTaskRequest,
    deadlineMs: number,
  ): Promise<BeginTaskResponse__Output> {
    return new Promise((resolve, reject) => {
      this.#grpc.BeginTask(
        { subject: toWire(subject), request },
        headers(),
        { deadline: Date.now() + deadlineMs },
        (err, res) => (err || !res ? reject(err) : resolve(res)),
      )
    })
  }

  /** EndTask as `subject`. */
  endTask(subject: Subject, request: EndTaskRequest, deadlineMs: number): Promise<EndTaskResponse__Output> {
    return new Promise((resolve, reject) => {
      this.#grpc.EndTask(
        { subject: toWire(subject), request },
        headers(),
        { deadline: Date.now() + deadlineMs },
        (err, res) => (err || !res ? reject(err) : resolve(res)),
      )
    })
  }

  close(): void {
    this.#grpc.close()
  }
}

function watch<T>(stream: ClientReadableStream<T>, h: StreamHandlers<T>): Cancellable {
  stream.on('data', (m: T) => h.onMessage(m))
  stream.on('error', (err: ServiceError) => h.onError(err))
  return { cancel: () => stream.cancel() }
}
