import { once } from 'node:events'
import { createServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import { TrustDomain } from '../../lib/core/trust-domain.js'
import { createCsr } from '../../lib/core/x509/csr.js'
import { encodePem } from '../../lib/core/x509/pem.js'
import { exportPkcs8Der } from '../../lib/core/x509/private-key.js'
import { generateP256Key } from '../../server/ca/key-generation.js'
import { signX509SvidFromCsr } from '../../server/ca/svid-signer.js'
import { X509Ca } from '../../server/ca/x509-ca.js'
import { report, runChild, untilStdinEnds } from './common.js'

/** The first line an HTTPS upstream child prints. */
export interface HttpsUpstreamReady {
  readonly pid: number
  /** Its port on 127.0.0.1; its certificate names `localhost`. */
  readonly port: number
  /** The CA its certificate chains to, PEM (the broker's `--upstream-ca`). */
  readonly caPem: string
}

const BODY = Buffer.from('{"ok":true}\n')
const HOUR = 3_600_000

/** A CA of its own and a `localhost` certificate from it, through the server's own CA code. */
async function credentials() {
  const nowMs = Date.now()
  const ca = X509Ca.createRoot({
    trustDomain: TrustDomain.parse('bench-upstream.local'),
    key: await generateP256Key(),
    nowMs,
    ttlMs: HOUR,
  })
  const key = await generateP256Key()
  const leaf = await signX509SvidFromCsr(ca, {
    csrDer: createCsr(key),
    id: SpiffeId.parse('spiffe://bench-upstream.local/api'),
    dnsNames: ['localhost'],
    ttlMs: HOUR,
    nowMs,
  })
  return {
    caPem: encodePem('CERTIFICATE', ca.certificate.der),
    cert: encodePem('CERTIFICATE', leaf.der),
    key: encodePem('PRIVATE KEY', exportPkcs8Der(key)),
  }
}

/**
 * Child process: a tiny HTTPS API on 127.0.0.1 (a 12-byte JSON answer to every request), the
 * third-party upstream the broker and a bare reverse proxy are measured over. Prints
 * {@link HttpsUpstreamReady}; stops when its stdin closes.
 */
async function main(): Promise<void> {
  const { caPem, cert, key } = await credentials()
  const server = createServer({ cert, key }, (req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length })
    res.end(BODY)
  })
  server.keepAliveTimeout = 60_000
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  report({ pid: process.pid, port, caPem } satisfies HttpsUpstreamReady)
  await untilStdinEnds()
  server.closeAllConnections()
  server.close()
}

runChild(main)
