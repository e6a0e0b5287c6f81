import { createPublicKey, type KeyObject } from 'node:crypto'
import type { PushCertificateProvider } from '../../common/grpc/certificate-provider.js'
import type { Clock } from '../../lib/core/clock.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import type { TrustDomain } from '../../lib/core/trust-domain.js'
import { parseCertificate } from '../../lib/core/x509/certificate.js'
import { encodePem } from '../../lib/core/x509/pem.js'
import { exportPkcs8Der } from '../../lib/core/x509/private-key.js'
import type { X509Svid } from '../../lib/core/x509/x509-svid.js'
import { generateP256Key } from '../ca/key-generation.js'
import type { X509Ca } from '../ca/x509-ca.js'

/** The path of the server's own SPIFFE ID, `spiffe://<td>/tessera/server`. */
export const SERVER_ID_PATH = '/tessera/server'

/** The server's own ID in `td`. */
export function serverIdOf(td: TrustDomain): SpiffeId {
  return SpiffeId.fromPath(td, SERVER_ID_PATH)
}

/** What the server SVID keeper needs. */
export interface ServerSvidDeps {
  readonly trustDomain: TrustDomain
  readonly clock: Clock
  /** The CA that signs now. */
  readonly activeCa: () => X509Ca
  /** PEM of the trusted CAs to present to clients (the own bundle's X.509 authorities). */
  readonly bundlePem: () => string
  readonly ttlMs: number
  readonly provider: PushCertificateProvider
}

/**
 * Keeps the server's own X509-SVID (`spiffe://<td>/tessera/server`) that the agent API presents over
 * TLS: issued at start, re-issued at half-life or as soon as another CA becomes active, and pushed into
 * the TLS credentials together with the current bundle. The private key never leaves this process.
 */
export class ServerSvid {
  readonly #deps: ServerSvidDeps
  #issuedAtMs = 0
  #notAfterMs = 0
  #signerId = ''
  #current: X509Svid | undefined

  constructor(deps: ServerSvidDeps) {
    this.#deps = deps
  }

  get id(): SpiffeId {
    return serverIdOf(this.#deps.trustDomain)
  }

  /** The SVID issued last, with its key (it also signs the server's audit checkpoints); undefined before the first. */
  get current(): X509Svid | undefined {
    return this.#current
  }

  /** Re-issues when due; publishes the bundle every time (it may have changed). */
  async refresh(): Promise<void> {
    const ca = this.#deps.activeCa()
    const nowMs = this.#deps.clock.nowMs()
    const halfLife = this.#issuedAtMs + (this.#notAfterMs - this.#issuedAtMs) / 2
    if (ca.certificate.serialHex !== this.#signerId || nowMs >= halfLife) await this.#issue(ca, nowMs)
    this.#deps.provider.setCa(this.#deps.bundlePem())
  }

  async #issue(ca: X509Ca, nowMs: number): Promise<void> {
    const key: KeyObject = await generateP256Key()
    const spkiDer = createPublicKey(key).export({ type: 'spki', format: 'der' })
    const leaf = ca.issueLeaf({ spkiDer, id: this.id, ttlMs: this.#deps.ttlMs, nowMs })
    this.#deps.provider.setIdentity(
      encodePem('CERTIFICATE', leaf.der),
      encodePem('PRIVATE KEY', exportPkcs8Der(key)),
    )
    this.#current = { id: this.id, certificates: [parseCertificate(leaf.der)], privateKey: key, hint: '' }
    this.#issuedAtMs = nowMs
    this.#notAfterMs = leaf.notAfterMs
    this.#signerId = ca.certificate.serialHex
  }
}
