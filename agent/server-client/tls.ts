import { connect, createSecureContext, type PeerCertificate } from 'node:tls'
import { type ChannelCredentials, credentials, experimental } from '@grpc/grpc-js'
import { PushCertificateProvider } from '../../common/grpc/certificate-provider.js'
import type { X509Bundle } from '../../lib/core/bundle/x509-bundle.js'
import type { Clock } from '../../lib/core/clock.js'
import { IdentityError } from '../../lib/core/errors.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import type { TrustDomain } from '../../lib/core/trust-domain.js'
import { type Certificate, parseCertificate } from '../../lib/core/x509/certificate.js'
import { encodePem } from '../../lib/core/x509/pem.js'
import { exportPkcs8Der } from '../../lib/core/x509/private-key.js'
import { validateLeaf, type X509Svid } from '../../lib/core/x509/x509-svid.js'
import { authorizeId } from '../../lib/verify/authorizer.js'
import { verifyPeerCertificate } from '../../lib/verify/x509-peer.js'

/** The server's SPIFFE ID in `td`: `spiffe://<td>/tessera/server`. */
export function serverIdIn(td: TrustDomain): SpiffeId {
  return SpiffeId.fromPath(td, '/tessera/server')
}

/** How long {@link pinServerCertificate} waits for the handshake. */
export const PIN_TIMEOUT_MS = 5000

/**
 * The agent side of the agent API's TLS: the trusted bundle (checked against the server's SVID in
 * `checkServerIdentity` with Tessera's own verifier, so the server is known by its SPIFFE ID and never
 * by a host name) and the agent's own SVID. Both are pushed into grpc-js certificate providers, so a
 * new bundle or a renewed SVID is used for every new connection.
 */
export class ServerTls {
  readonly #serverId: SpiffeId
  readonly #clock: Clock
  readonly #ca = new PushCertificateProvider()
  readonly #identity = new PushCertificateProvider()
  #bundle: X509Bundle | undefined
  #hasIdentity = false

  constructor(trustDomain: TrustDomain, clock: Clock) {
    this.#serverId = serverIdIn(trustDomain)
    this.#clock = clock
  }

  /** The bundle the server's SVID must chain to, if one is set. */
  get bundle(): X509Bundle | undefined {
    return this.#bundle
  }

  get hasIdentity(): boolean {
    return this.#hasIdentity
  }

  /** Trusts `bundle` (own trust domain) from now on. */
  setBundle(bundle: X509Bundle): void {
    if (this.#bundle?.equals(bundle)) return
    this.#bundle = bundle
    this.#ca.setCa(bundle.marshalPem())
  }

  /** Presents `svid` on every new connection from now on. */
  setIdentity(svid: X509Svid): void {
    const chainPem = svid.certificates.map((c) => encodePem('CERTIFICATE', c.der)).join('')
    this.#identity.setIdentity(chainPem, encodePem('PRIVATE KEY', exportPkcs8Der(svid.privateKey)))
    this.#hasIdentity = true
  }

  /** Channel credentials: the bundle as roots, the SVID as client certificate when `withIdentity`. */
  credentials(withIdentity: boolean): ChannelCredentials {
    return experimental.createCertificateProviderChannelCredentials(
      this.#ca,
      withIdentity ? this.#identity : null,
      {
        checkServerIdentity: (_host, cert) => this.#checkServer(cert),
      },
    )
  }

  /**
   * Credentials that trust exactly `pinned` (the server certificate seen by
   * {@link pinServerCertificate}) — the insecure bootstrap, before any bundle is known.
   */
  pinnedCredentials(pinned: Certificate): ChannelCredentials {
    const context = createSecureContext({
      ca: encodePem('CERTIFICATE', pinned.der),
      allowPartialTrustChain: true,
    })
    return credentials.createFromSecureContext(context, {
      checkServerIdentity: (_host, cert) =>
        cert.raw?.equals(pinned.der) ? this.#checkId(pinned) : new Error('the server certificate changed'),
    })
  }

  #checkServer(cert: PeerCertificate): Error | undefined {
    try {
      if (!this.#bundle) throw new IdentityError('ERR_BUNDLE_NOT_FOUND', 'no trust bundle yet')
      const bundle = this.#bundle
      const source = {
        getX509BundleForTrustDomain: (td: TrustDomain) =>
          td.equals(bundle.trustDomain) ? bundle : undefined,
      }
      verifyPeerCertificate(cert, source, authorizeId(this.#serverId), {
        nowMs: this.#clock.nowMs(),
        cache: false,
      })
      return undefined
    } catch (err) {
      return err instanceof Error ? err : new Error('server verification failed')
    }
  }

  #checkId(cert: Certificate): Error | undefined {
    try {
      const id = validateLeaf(cert)
      return id.equals(this.#serverId)
        ? undefined
        : new Error(`the server presented ${id}, not ${this.#serverId}`)
    } catch (err) {
      return err instanceof Error ? err : new Error('server verification failed')
    }
  }
}

/**
 * Insecure bootstrap: connects once without verifying the chain and returns the server's leaf
 * certificate, after checking that it is an X509-SVID for `spiffe://<td>/tessera/server`.
 * @throws ERR_PEER_UNAUTHORIZED when the server presents another ID or no SVID;
 *   ERR_REQUEST_INVALID when the address is not host:port; the socket error when it cannot connect
 */
export function pinServerCertificate(address: string, trustDomain: TrustDomain): Promise<Certificate> {
  const { host, port } = splitAddress(address)
  const expected = serverIdIn(trustDomain)
  return new Promise((resolve, reject) => {
    const socket = connect({
      host,
      port,
      rejectUnauthorized: false,
      ALPNProtocols: ['h2'],
      servername: trustDomain.name,
    })
    socket.setTimeout(PIN_TIMEOUT_MS, () =>
      socket.destroy(new Error('timed out waiting for the server handshake')),
    )
    socket.once('error', reject)
    socket.once('secureConnect', () => {
      const raw = socket.getPeerCertificate().raw
      socket.destroy()
      try {
        const cert = parseCertificate(raw)
        if (!validateLeaf(cert).equals(expected)) throw new Error('wrong server ID')
        resolve(cert)
      } catch (err) {
        reject(new IdentityError('ERR_PEER_UNAUTHORIZED', `the server is not ${expected}`, { cause: err }))
      }
    })
  })
}

/** `host:port` or `[v6]:port`. @throws ERR_REQUEST_INVALID */
export function splitAddress(address: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(address)
  const port = Number(match?.[3])
  if (!match || port < 1 || port > 65_535)
    throw new IdentityError('ERR_REQUEST_INVALID', `server address must be host:port, not ${address}`)
  return { host: match[1] ?? match[2] ?? '', port }
}
