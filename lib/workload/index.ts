/**
 * The Workload API client of `@tessera/spiffe`: {@link X509Source}, {@link JwtSource} and
 * {@link BundleSource} keep the current SVIDs and bundles from the agent (rotation followed), and
 * {@link WorkloadClient} makes single calls. The endpoint comes from `options.endpoint` or the
 * `SPIFFE_ENDPOINT_SOCKET` environment variable (`unix:///path` or `tcp://ip:port`).
 * @example
 * import { X509Source } from '@tessera/spiffe/workload'
 * const source = await X509Source.create()
 * console.log(source.getX509Svid().id.toString())
 * source.close()
 * @packageDocumentation
 * @module @tessera/spiffe/workload
 */

export { type Backoff, DEFAULT_BACKOFF, LinearBackoff, type Scheduler } from './backoff.js'
export { BundleSource } from './bundle-source.js'
export {
  ENDPOINT_SOCKET_ENV,
  loadWorkloadEndpointFromEnv,
  parseWorkloadEndpoint,
  type WorkloadEndpoint,
} from './endpoint.js'
export { JwtSource } from './jwt-source.js'
export {
  type ProofOptions,
  proofFetch,
  proofHeaders,
  proofRequest,
  type WitSvidProvider,
} from './proof-fetch.js'
export type { JwtSvidParams, ValidatedJwtSvid, WorkloadJwtSvid, X509Context } from './responses.js'
export { RevocationSource } from './revocation-source.js'
export {
  type BeginTaskParams,
  type BegunTask,
  TaskClient,
  type TaskInfo,
} from './task-client.js'
export { beginTask, TaskSource, type TaskSourceOptions } from './task-source.js'
export type { Watch } from './watch.js'
export { DEFAULT_FIRST_UPDATE_TIMEOUT_MS, type SourceOptions } from './watched-value.js'
export { WitBundleSet, type WorkloadWitSvid } from './wit-responses.js'
export { WitSource, type WitSourceOptions } from './wit-source.js'
export { WorkloadApiError } from './workload-api-error.js'
export {
  type CallTimeout,
  DEFAULT_CALL_TIMEOUT_MS,
  type FetchJwtSvidParams,
  WorkloadClient,
  type WorkloadClientOptions,
} from './workload-client.js'
export { X509Source, type X509SourceOptions, type X509SvidSource } from './x509-source.js'
