import type { SpiffeId } from '../core/spiffe-id.js'
import type { PeerCertificateLike } from '../verify/x509-peer.js'

/** The socket-like object {@link peerSpiffeId} reads: a `tls.TLSSocket`, or an http2 session's socket proxy. */
export interface TlsSocketLike {
  /** Whether Node's own chain check passed (the client side reads it). */
  readonly authorized?: boolean
  /** The peer's certificate with its issuers linked, as `tls.TLSSocket.getPeerCertificate(true)`. */
  getPeerCertificate(detailed: true): PeerCertificateLike | null
}

/** Re-verifies a server's chain the way the client check that accepted it did; undefined when it fails now. */
type ServerRecheck = (cert: PeerCertificateLike) => SpiffeId | undefined

const MAX_SERVER_RECORDS = 1024

/** Sockets whose peer passed our check, with the peer's ID. */
const verifiedPeers = new WeakMap<object, SpiffeId>()
/**
 * Set on a verified socket to itself: an http2 session's `socket` is a proxy that forwards property
 * reads to the real socket, so `proxy[kSelf]` finds the WeakMap key.
 */
const kSelf = Symbol('tessera.verifiedSocket')
/** Server leaf fingerprints our client check accepted → how to check them again. */
const serverRecords = new Map<string, ServerRecheck>()

/**
 * Records that `socket`'s peer passed the SPIFFE check as `id` (the server side, in `secureConnection`).
 * @example
 * rememberPeer(socket, peer.id)
 */
export function rememberPeer(socket: object, id: SpiffeId): void {
  verifiedPeers.set(socket, id)
  Object.defineProperty(socket, kSelf, { value: socket, configurable: true })
}

/**
 * Records that the client check accepted a server presenting `cert` (the client side, in
 * `checkServerIdentity`, which Node calls without the socket): `peerSpiffeId` of a client socket whose
 * server presents the same leaf re-runs `recheck` on that socket's chain.
 * @example
 * rememberServer(cert, (c) => verifyPeerCertificate(c, source, authorizer).id)
 */
export function rememberServer(cert: PeerCertificateLike, recheck: ServerRecheck): void {
  const fingerprint = cert.fingerprint256
  if (fingerprint === undefined) return
  serverRecords.delete(fingerprint)
  serverRecords.set(fingerprint, recheck)
  if (serverRecords.size > MAX_SERVER_RECORDS) {
    const oldest = serverRecords.keys().next().value
    if (oldest !== undefined) serverRecords.delete(oldest)
  }
}

function isServerSide(socket: object): boolean {
  const server = (socket as { server?: unknown }).server
  return server !== undefined && server !== null
}

/**
 * The SPIFFE ID of a TLS connection's peer, as verified by `createMtlsServer` or `mtlsClientOptions`,
 * or undefined when it was not verified by them.
 * - Server side: the ID `createMtlsServer` stored when it checked the client in `secureConnection`; a
 *   socket of any other server answers undefined.
 * - Client side: Node runs `checkServerIdentity` without the socket, so the first call re-runs, on this
 *   socket's chain, the check of the `mtlsClientOptions` that accepted a server with this leaf (current
 *   bundles, same authorizer; a cache hit, microseconds) and stores the answer. A socket that Node did not
 *   mark `authorized` answers undefined.
 * @example
 * createMtlsServer(source, authorizeAny(), (options) =>
 *   https.createServer(options, (req, res) => res.end(peerSpiffeId(req.socket as TLSSocket)?.toString())),
 * )
 */
export function peerSpiffeId(socket: TlsSocketLike): SpiffeId | undefined {
  const self = (socket as { [kSelf]?: object })[kSelf]
  const known = verifiedPeers.get(self ?? socket)
  if (known !== undefined || isServerSide(socket) || socket.authorized !== true) return known
  const cert = socket.getPeerCertificate(true)
  const recheck = cert?.fingerprint256 === undefined ? undefined : serverRecords.get(cert.fingerprint256)
  const id = cert && recheck ? recheck(cert) : undefined
  if (id !== undefined) verifiedPeers.set(socket, id)
  return id
}
