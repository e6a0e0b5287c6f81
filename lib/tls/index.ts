/**
 * Mutual TLS between workloads with `@tessera/spiffe`: {@link createMtlsServer} builds a `tls`,
 * `https` or `http2` server that verifies every client's SPIFFE ID, {@link mtlsClientOptions} the
 * client side that always authorises the server; both follow the source's rotations.
 * @example
 * import { createMtlsServer, mtlsClientOptions, peerSpiffeId } from '@tessera/spiffe/tls'
 * const server = createMtlsServer(source, authorizeAny(), (options) => https.createServer(options, handler))
 * @packageDocumentation
 * @module @tessera/spiffe/tls
 */

export { mtlsClientOptions } from './mtls-client.js'
export type { MtlsOptions } from './mtls-options.js'
export { createMtlsServer } from './mtls-server.js'
export { peerSpiffeId, type TlsSocketLike } from './peer-ids.js'
export type { TlsX509Source } from './tls-material.js'
