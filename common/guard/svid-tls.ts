import type { SecureContextOptions, TlsOptions } from 'node:tls'
import { encodePem } from '../../lib/core/x509/pem.js'
import type { X509Svid } from '../../lib/core/x509/x509-svid.js'
import type { X509SvidSource } from '../../lib/workload/x509-source.js'

/**
 * The key and certificate chain of an X509-SVID in the PEM form `tls` takes.
 * @example
 * server.setSecureContext(svidCredentials(source.getX509Svid()))
 */
export function svidCredentials(svid: X509Svid): Pick<SecureContextOptions, 'key' | 'cert'> {
  return {
    key: svid.privateKey.export({ type: 'pkcs8', format: 'pem' }),
    cert: svid.certificates.map((c) => encodePem('CERTIFICATE', c.der)).join(''),
  }
}

/**
 * Server options for the gateway's TLS listener: its own X509-SVID, TLS 1.2 or later, and a client
 * certificate asked for but not required, and not checked by OpenSSL: the guard verifies it by
 * SPIFFE rules on every request (chain to the bundle of the peer's own trust domain), and a caller
 * without one may authenticate with a bearer JWT-SVID instead.
 * @throws ERR_WORKLOAD_API_UNAVAILABLE, ERR_NO_IDENTITY when the source has no SVID
 * @example
 * https.createServer(svidTlsOptions(x509Source), handler)
 */
export function svidTlsOptions(source: X509SvidSource): TlsOptions {
  return {
    ...svidCredentials(source.getX509Svid()),
    minVersion: 'TLSv1.2',
    requestCert: true,
    rejectUnauthorized: false,
  }
}
