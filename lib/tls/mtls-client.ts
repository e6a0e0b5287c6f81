import type { ConnectionOptions, PeerCertificate } from 'node:tls'
import type { SpiffeId } from '../core/spiffe-id.js'
import type { Authorizer } from '../verify/authorizer.js'
import { type PeerCertificateLike, verifyPeerCertificate } from '../verify/x509-peer.js'
import { asIdentityError, cacheOption, type MtlsOptions, withLiveCredentials } from './mtls-options.js'
import { rememberServer } from './peer-ids.js'
import { LiveTlsMaterial, type TlsX509Source } from './tls-material.js'

/**
 * `tls.connect` / `https.request` / `http2.connect` options that present `source`'s current SVID and
 * always authorise the server during the handshake: Node first checks the server's chain against `ca`
 * (the authorities of all trust domains, a first filter), then calls `checkServerIdentity`, which runs
 * the SPIFFE check (the bundle of the server ID's own trust domain, then `authorizer`; the host name is
 * not used: SPIFFE authenticates by ID). A failure is returned to Node, which destroys the socket with
 * it before `secureConnect`: nothing the client wrote is sent. `key`, `cert` and `ca` are getters, read
 * at each `connect(options)` or `{ ...options }`, so every new connection presents the current SVID.
 * `session: undefined` keeps an `https.Agent` from resuming a cached session (Node skips
 * `checkServerIdentity` on resumption). Pooled keep-alive connections are not re-checked. Overriding
 * `checkServerIdentity` or `rejectUnauthorized` in a spread removes the check: don't.
 * @throws what `source.getX509Svid()` throws (no SVID yet), when Node reads the getters
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
    checkServerIdentity: (_hostname: string, cert: PeerCertificate) => {
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
