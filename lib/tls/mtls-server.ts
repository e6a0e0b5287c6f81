import { constants } from 'node:crypto'
import { Server, type TLSSocket, type TlsOptions } from 'node:tls'
import { IdentityError } from '../core/errors.js'
import type { RevocableCredential } from '../core/revocation.js'
import type { Authorizer } from '../verify/authorizer.js'
import { verifyPeerCertificate } from '../verify/x509-peer.js'
import { asIdentityError, cacheOption, type MtlsOptions, withLiveCredentials } from './mtls-options.js'
import { rememberPeer } from './peer-ids.js'
import { LiveTlsMaterial, type TlsX509Source } from './tls-material.js'

interface ServerState {
  readonly live: LiveTlsMaterial
  readonly authorizer: Authorizer
  readonly opts: MtlsOptions
  /** Open connections by their client's credential, when revocations are watched. */
  open?: Map<TLSSocket, RevocableCredential>
}

/** With a watched revocation list: an open connection whose client's SVID gets revoked is destroyed. */
function closeRevokedConnections(server: Server, state: ServerState): void {
  const source = state.opts.revocations
  if (source?.onUpdate === undefined) return
  const open = new Map<TLSSocket, RevocableCredential>()
  state.open = open
  const unsubscribe = source.onUpdate(() => {
    const list = source.getRevocations()
    for (const [socket, credential] of open) {
      const found = list.find(credential)
      if (found === undefined) continue
      open.delete(socket)
      socket.destroy()
      state.opts.onRefused?.(
        new IdentityError('ERR_CREDENTIAL_REVOKED', `the client's X509-SVID was revoked (${found.kind})`),
      )
    }
  })
  server.once('close', unsubscribe)
}

/**
 * Creates a TLS server (`tls`, `https` or `http2` secure server: whatever `createServer` builds from
 * the options it is handed) that presents `source`'s current SVID and verifies **every** client by
 * SPIFFE rules. There is no way to get the options without the check: the helper builds them, hands
 * them to `createServer`, and wires the check onto the server that comes back. What happens when:
 * 1. Handshake (OpenSSL, inside Node): always a full one (no session tickets are issued), in which the
 *    server presents the current SVID; the client must send a certificate (none: the handshake fails
 *    with a `certificate required` alert, and the server emits `tlsClientError`).
 * 2. Right after it, before `secureConnection`: Node checks the client's chain against `ca`, the
 *    authorities of *all* trust domains pooled (a first filter only). Failure: Node destroys the socket
 *    without an alert; `onRefused` is not told (the server may emit `tlsClientError`).
 * 3. `secureConnection`, first listener (prepended): the SPIFFE check, with the chain the client sent
 *    against the bundle of the client ID's **own** trust domain, then `authorizer`. Failure: the socket
 *    is destroyed there, synchronously, before any `data` is read by anyone, and `onRefused` is told;
 *    HTTP handlers never run, and a raw `tls` connection listener should act only when
 *    `peerSpiffeId(socket)` answers. Success: the ID is stored for {@link peerSpiffeId}. Node cannot
 *    run this check inside the handshake, so under TLS 1.3 the client has already seen its handshake
 *    succeed: a refusal reaches it as a reset or an EOF.
 * 4. With `opts.revocations` (a watched `RevocationSource`): a revoked client SVID is refused in step 3,
 *    and an open connection whose client's SVID gets revoked is destroyed when the list changes.
 * 5. Each source update: `server.setSecureContext` with the new SVID and bundles, for connections
 *    without SNI; connections with SNI get a context of the current material anyway. Existing
 *    connections are not re-checked. The subscription ends when the server closes.
 *
 * `createServer` may add options that do not touch certificates (`ALPNProtocols`, `allowHTTP1`...) by
 * spreading the ones it is given; it must keep `requestCert` (else the helper refuses the server).
 * @throws ERR_REQUEST_INVALID when `createServer` returns something that is not a `tls.Server`, or a
 *   server that does not ask clients for a certificate; what `source.getX509Svid()` throws (no SVID yet)
 * @example
 * const server = createMtlsServer(source, authorizeMemberOf(TrustDomain.parse('example.org')), (options) =>
 *   https.createServer(options, (req, res) => res.end(`hello ${peerSpiffeId(req.socket as TLSSocket)}`)),
 * )
 * server.listen(8443, '127.0.0.1')
 */
export function createMtlsServer<S extends Server>(
  source: TlsX509Source,
  authorizer: Authorizer,
  createServer: (options: TlsOptions) => S,
  opts: MtlsOptions = {},
): S {
  const live = new LiveTlsMaterial(source, opts.minVersion ?? 'TLSv1.3')
  const options = serverOptions(live, opts)
  const server = createServer(options)
  if (!(server instanceof Server))
    throw new IdentityError(
      'ERR_REQUEST_INVALID',
      'createServer must return a tls.Server (tls, https or http2)',
    )
  if ((server as { requestCert?: boolean }).requestCert !== true)
    throw new IdentityError(
      'ERR_REQUEST_INVALID',
      'createServer dropped requestCert: clients would not be verified',
    )
  enforce(server, options, { live, authorizer, opts })
  return server
}

function serverOptions(live: LiveTlsMaterial, opts: MtlsOptions): TlsOptions {
  return withLiveCredentials(live, {
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: opts.minVersion ?? 'TLSv1.3',
    // No session tickets: every connection is a full handshake with the current certificates.
    secureOptions: constants.SSL_OP_NO_TICKET,
    SNICallback: (_servername: string, callback: (err: Error | null, ctx?: unknown) => void) => {
      try {
        callback(null, live.current().context)
      } catch (err) {
        callback(err instanceof Error ? err : new Error(String(err)), undefined)
      }
    },
  } as TlsOptions)
}

function enforce(server: Server, options: TlsOptions, state: ServerState): void {
  server.prependListener('secureConnection', (socket: TLSSocket) => checkClient(socket, state))
  closeRevokedConnections(server, state)
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
}

function checkClient(socket: TLSSocket, state: ServerState): void {
  try {
    const peer = verifyPeerCertificate(socket.getPeerCertificate(true), state.live.source, state.authorizer, {
      localCaFingerprints: state.live.current().caFingerprints,
      ...cacheOption(state.opts),
    })
    rememberPeer(socket, peer.id)
    const leaf = peer.path[0]
    if (leaf !== undefined && state.open !== undefined) {
      const credential = {
        kind: 'x509',
        id: peer.id,
        serialHex: leaf.serialHex,
        notBeforeMs: leaf.notBeforeMs,
      } as const
      state.open.set(socket, credential)
      socket.once('close', () => state.open?.delete(socket))
    }
  } catch (err) {
    socket.destroy()
    state.opts.onRefused?.(asIdentityError(err))
  }
}
