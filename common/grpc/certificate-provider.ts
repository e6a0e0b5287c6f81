import type { experimental } from '@grpc/grpc-js'

type CaListener = (update: experimental.CaCertificateUpdate | null) => void
type IdentityListener = (update: experimental.IdentityCertificateUpdate | null) => void

/**
 * A grpc-js certificate provider that its owner pushes new material into: rotated SVIDs and bundles
 * take effect for new TLS connections without restarting the server or the channel.
 * A listener added later gets the latest material on the next microtask: grpc-js 1.14's server
 * credentials subscribe before they register their watcher, so material handed over synchronously
 * during subscription would be dropped (and every TLS connection refused until the next push).
 */
export class PushCertificateProvider implements experimental.CertificateProvider {
  #ca: experimental.CaCertificateUpdate | null = null
  #identity: experimental.IdentityCertificateUpdate | null = null
  readonly #caListeners = new Set<CaListener>()
  readonly #identityListeners = new Set<IdentityListener>()

  /** Publishes the trusted CA certificates (PEM). */
  setCa(pem: string): void {
    this.#ca = { caCertificate: Buffer.from(pem) }
    for (const l of this.#caListeners) l(this.#ca)
  }

  /** Publishes the own certificate chain (PEM, leaf first) and its private key (PEM). */
  setIdentity(chainPem: string, keyPem: string): void {
    this.#identity = { certificate: Buffer.from(chainPem), privateKey: Buffer.from(keyPem) }
    for (const l of this.#identityListeners) l(this.#identity)
  }

  addCaCertificateListener(listener: CaListener): void {
    this.#caListeners.add(listener)
    queueMicrotask(() => {
      if (this.#ca && this.#caListeners.has(listener)) listener(this.#ca)
    })
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.#caListeners.delete(listener)
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.#identityListeners.add(listener)
    queueMicrotask(() => {
      if (this.#identity && this.#identityListeners.has(listener)) listener(this.#identity)
    })
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.#identityListeners.delete(listener)
  }
}
