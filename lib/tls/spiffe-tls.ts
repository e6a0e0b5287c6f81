import { constants } from 'node:crypto'
import type {
  ConnectionOptions,
  PeerCertificate,
  SecureVersion,
  Server,
  TLSSocket,
  TlsOptions,
} from 'node:tls'
import { IdentityError } from '../core/errors.js'
import type { SpiffeId } from '../core/spiffe-id.js'
import type { Authorizer } from '../verify/authorizer.js'
import { type PeerCertificateLike, verifyPeerCertificate } from '../verify/x509-peer.js'
import type { X509PeerCache } from '../verify/x509-peer-cache.js'
import { rememberPeer, rememberServer } from './peer-ids.js'
import { LiveTlsMaterial, type TlsX509Source } from './tls-material.js'

export { peerSpiffeId, type TlsSocketLike } from './peer-ids.js'
export type { TlsX509Source } from './tls-material.js'

/**
 * Options of {@link mtlsServerOptions} and {@link mtlsClientOptions}.
 * @example
 * const opts: MtlsOptions = { onRefused: (err) => audit.denied(err.code) }
 */
export interface MtlsOptions {
  /** The lowest TLS version accepted; default TLS 1.3. */
  readonly minVersion?: SecureVersion
  /** The cache of verified chains; default the process-wide one; `false` verifies every time. */
  readonly cache?: X509PeerCache | false
  /** Told of every peer the SPIFFE check refused (after which the connection is closed). */
  readonly onRefused?: (err: IdentityError) => void
  /** Told when a server could not take an update's new SVID or bundles (it keeps the previous ones). */
  readonly onError?: (err: IdentityError) => void
}

const kServerState = Symbol('tessera.mtlsServerState')

interface LiveCredentials {
  readonly key: string
  readonly cert: string
  readonly ca: string[]
}

interface ServerState {
  readonly live: LiveTlsMaterial
  readonly authorizer: Authorizer
  readonly opts: MtlsOptions
}

/**
 * `tls` / `https` / `http2` server options that present `source`'s current SVID and make Node check the
 * client's chain during the handshake. Pass the same object to {@link enforceMtls} with the server. The
 * `key`, `cert` and `ca` members are getters (read when the server is created); `SNICallback` answers
 * every connection that sends SNI with a context of the current SVID and bundles.
 * @example
 * const options = mtlsServerOptions(source, authorizeMemberOf(TrustDomain.parse('example.org')))
 * const server = enforceMtls(https.createServer(options, handler), options)
 */
export interface MtlsServerOptions extends TlsOptions {
  readonly [kServerState]: ServerState
}

/**
 * Builds the server options; see {@link enforceMtls} for what happens when. Without `enforceMtls` only
 * Node's pooled chain check applies (no per-trust-domain check, no authorizer, no rotation for clients
 * that send no SNI) and `peerSpiffeId` answers undefined on that server.
 * @throws what `source.getX509Svid()` throws (no SVID yet), when the server reads the getters
 * @example
 * const options = mtlsServerOptions(source, authorizeId(SpiffeId.parse('spiffe://example.org/agent')))
 * const server = enforceMtls(tls.createServer(options, onConnection), options)
 */
export function mtlsServerOptions(
  source: TlsX509Source,
  authorizer: Authorizer,
  opts: MtlsOptions = {},
): MtlsServerOptions {
  const live = new LiveTlsMaterial(source, opts.minVersion ?? 'TLSv1.3')
  return withLiveCredentials(live, {
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: opts.minVersion ?? 'TLSv1.3',
    // No session tickets: every connection is a full handshake with the current certificates.
    secureOptions: constants.SSL_OP_NO_TICKET,
    SNICallback: (_servername, callback) => {
      try {
        callback(null, live.current().context)
      } catch (err) {
        callback(err instanceof Error ? err : new Error(String(err)), undefined)
      }
    },
    [kServerState]: { live, authorizer, opts },
  })
}

/**
 * Makes `server` (from `tls.createServer`, `https.createServer` or `http2.createSecureServer` with
 * `options`) run the SPIFFE check on every client and follow the source's updates. What happens when:
 * 1. Handshake (OpenSSL, inside Node): always a full one (no session tickets are issued), in which the
 *    server presents the current SVID; the client must send a certificate (none: the handshake fails
 *    with a `certificate required` alert, and the server emits `tlsClientError`).
 * 2. Right after it, before `secureConnection`: Node checks the client's chain against `ca`, the
 *    authorities of *all* trust domains pooled (a first filter only). Failure: Node destroys the socket
 *    without an alert; `onRefused` is not told (the server may emit `tlsClientError`).
 * 3. `secureConnection`, first listener (prepended): the SPIFFE check, with the chain the client sent
 *    against the bundle of the client ID's **own** trust domain, then the authorizer. Failure: the socket
 *    is destroyed there, synchronously, before any `data` is read by anyone, and `onRefused` is told;
 *    the listeners registered earlier (the HTTP / HTTP/2 machinery, a `tls.createServer` connection
 *    listener) still run after it, with a destroyed socket: HTTP handlers never run, and a raw `tls`
 *    listener should act only when `peerSpiffeId(socket)` answers. Success: the ID
 *    is stored for `peerSpiffeId`. Node cannot run this check inside the handshake, so under TLS 1.3 the
 *    client has already seen its handshake succeed: a refusal reaches it as a reset or an EOF.
 * 4. Each source update: `server.setSecureContext` with the new SVID and bundles, for connections
 *    without SNI; connections with SNI get a context of the current material anyway. Existing
 *    connections are not re-checked. The subscription ends when the server closes.
 * @throws ERR_REQUEST_INVALID when `options` did not come from {@link mtlsServerOptions}
 * @example
 * const options = mtlsServerOptions(source, authorizeAny())
 * const server = enforceMtls(http2.createSecureServer(options), options)
 */
export function enforceMtls<S extends Server>(server: S, options: MtlsServerOptions): S {
  const state = options?.[kServerState]
  if (state === undefined)
    throw new IdentityError('ERR_REQUEST_INVALID', 'enforceMtls needs the options mtlsServerOptions built')
  server.prependListener('secureConnection', (socket: TLSSocket) => checkClient(socket, state))
  const refresh = () => {
    try {
      const { key, cert, ca } = state.live.current()
      server.setSecureContext({ ...options, key, cert, ca: [...ca] })
    } catch (err) {
      state.opts.onError?.(asIdentityError(err))
    }
  }
  const unsubscribe = state.live.source.onUpdate(refresh)
  server.once('close', unsubscribe)
  return server
}

function checkClient(socket: TLSSocket, state: ServerState): void {
  try {
    const peer = verifyPeerCertificate(socket.getPeerCertificate(true), state.live.source, state.authorizer, {
      localCaFingerprints: state.live.current().caFingerprints,
      ...cacheOption(state.opts),
    })
    rememberPeer(socket, peer.id)
  } catch (err) {
    socket.destroy()
    state.opts.onRefused?.(asIdentityError(err))
  }
}

/**
 * `tls.connect` / `https.request` / `http2.connect` options that present `source`'s current SVID and
 * check the server during the handshake: Node first checks the server's chain against `ca` (the
 * authorities of all trust domains, a first filter), then calls `checkServerIdentity`, which runs the
 * SPIFFE check (the bundle of the server ID's own trust domain, then the authorizer; the host name is
 * not used: SPIFFE authenticates by ID). A failure is returned to Node, which destroys the socket with
 * it before `secureConnect`: nothing the client wrote is sent. `key`, `cert` and `ca` are getters, read
 * at each `connect(options)` or `{ ...options }`, so every new connection presents the current SVID.
 * `session: undefined` keeps an `https.Agent` from resuming a cached session (Node skips
 * `checkServerIdentity` on resumption). Pooled keep-alive connections are not re-checked.
 * @example
 * const options = mtlsClientOptions(source, authorizeId(SpiffeId.parse('spiffe://example.org/tool')))
 * https.request({ ...options, host: '127.0.0.1', port, path: '/', agent: false }, onResponse).end()
 */
export function mtlsClientOptions(
  source: TlsX509Source,
  authorizer: Authorizer,
  opts: MtlsOptions = {},
): ConnectionOptions {
  const live = new LiveTlsMaterial(source, opts.minVersion ?? 'TLSv1.3')
  const check = (cert: PeerCertificate): SpiffeId =>
    verifyPeerCertificate(cert, source, authorizer, {
      localCaFingerprints: live.current().caFingerprints,
      ...cacheOption(opts),
    }).id
  const recheck = (cert: PeerCertificateLike): SpiffeId | undefined => {
    try {
      return check(cert as PeerCertificate)
    } catch {
      return undefined
    }
  }
  return withLiveCredentials(live, {
    minVersion: opts.minVersion ?? 'TLSv1.3',
    rejectUnauthorized: true,
    session: undefined,
    checkServerIdentity: (_hostname, cert) => {
      try {
        check(cert)
        rememberServer(cert, recheck)
        return undefined
      } catch (err) {
        const refused = asIdentityError(err)
        opts.onRefused?.(refused)
        return refused
      }
    },
  })
}

/**
 * Adds `key`, `cert` and `ca` to `base` as enumerable getters of the current material, so that Node
 * (`connect(options)`, `createServer(options)`) and spreads (`{ ...options }`) read them at that moment.
 */
function withLiveCredentials<T extends object>(live: LiveTlsMaterial, base: T): T & LiveCredentials {
  return Object.defineProperties(base, {
    key: { get: () => live.current().key, enumerable: true },
    cert: { get: () => live.current().cert, enumerable: true },
    ca: { get: () => [...live.current().ca], enumerable: true },
  }) as T & LiveCredentials
}

function cacheOption(opts: MtlsOptions): { cache?: X509PeerCache | false } {
  return opts.cache === undefined ? {} : { cache: opts.cache }
}

function asIdentityError(err: unknown): IdentityError {
  if (err instanceof IdentityError) return err
  return new IdentityError('ERR_X509_SVID_UNTRUSTED', 'the peer could not be verified', { cause: err })
}
