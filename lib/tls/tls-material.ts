import { constants, X509Certificate } from 'node:crypto'
import { createSecureContext, type SecureContext, type SecureVersion } from 'node:tls'
import type { X509BundleSource } from '../core/bundle/bundle-source.js'
import type { X509Bundle } from '../core/bundle/x509-bundle.js'
import { encodePem } from '../core/x509/pem.js'
import type { X509Svid } from '../core/x509/x509-svid.js'

/**
 * What the TLS helpers need from an `X509Source`: the SVID to present, the bundles (per trust domain for
 * the SPIFFE check, and all of them for Node's `ca`), and update notifications. `X509Source` is one.
 * @example
 * const source: TlsX509Source = await X509Source.create({ endpoint: 'unix:///run/tessera/api.sock' })
 */
export interface TlsX509Source extends X509BundleSource {
  /** The SVID to present now. @throws IdentityError when there is none */
  getX509Svid(): X509Svid
  /** Every current X.509 bundle, own and federated. Should return the same object until an update. */
  readonly bundles: {
    /** Every X.509 bundle of the set. */
    x509Bundles(): Iterable<X509Bundle>
  }
  /** Calls `listener` after every update; returns the unsubscribe function. */
  onUpdate(listener: () => void): () => void
}

/** The key, chain and CA list of one moment, in the forms `node:tls` takes. */
export interface TlsMaterial {
  /** The SVID's private key, PKCS#8 PEM. */
  readonly key: string
  /** The SVID's chain, leaf first, PEM. */
  readonly cert: string
  /** Every bundle authority of every trust domain, PEM, one per element (Node's first filter only). */
  readonly ca: ReadonlyArray<string>
  /** `fingerprint256` of each element of `ca`, to tell the peer's certificates from Node's additions. */
  readonly caFingerprints: ReadonlySet<string>
  /** A secure context holding all of the above (built on first use). */
  readonly context: SecureContext
}

/**
 * The current {@link TlsMaterial} of a source, rebuilt only when the source's SVID or bundle set object
 * changes (that is, after an update): reading it per connection costs two identity comparisons.
 * @example
 * const live = new LiveTlsMaterial(source, 'TLSv1.3')
 * tls.createServer({ SNICallback: (_name, cb) => cb(null, live.current().context) })
 */
export class LiveTlsMaterial {
  readonly #source: TlsX509Source
  readonly #minVersion: SecureVersion
  #svid: X509Svid | undefined
  #bundles: unknown
  #material: TlsMaterial | undefined

  constructor(source: TlsX509Source, minVersion: SecureVersion) {
    this.#source = source
    this.#minVersion = minVersion
  }

  /** The source this material follows. */
  get source(): TlsX509Source {
    return this.#source
  }

  /** The material for the source's current SVID and bundles. @throws what `getX509Svid` throws */
  current(): TlsMaterial {
    const svid = this.#source.getX509Svid()
    const bundles = this.#source.bundles
    if (this.#material === undefined || svid !== this.#svid || bundles !== this.#bundles) {
      this.#material = buildMaterial(svid, bundles.x509Bundles(), this.#minVersion)
      this.#svid = svid
      this.#bundles = bundles
    }
    return this.#material
  }
}

function buildMaterial(
  svid: X509Svid,
  bundles: Iterable<X509Bundle>,
  minVersion: SecureVersion,
): TlsMaterial {
  const key = svid.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  const cert = svid.certificates.map((c) => encodePem('CERTIFICATE', c.der)).join('')
  const authorities = [...bundles].flatMap((b) => b.authorities)
  const ca = authorities.map((c) => encodePem('CERTIFICATE', c.der))
  const caFingerprints = new Set(authorities.map((c) => new X509Certificate(c.der).fingerprint256))
  let context: SecureContext | undefined
  return {
    key,
    cert,
    ca,
    caFingerprints,
    get context() {
      // No session tickets from a server using this context: every handshake presents the current SVID.
      context ??= createSecureContext({
        key,
        cert,
        ca: [...ca],
        minVersion,
        secureOptions: constants.SSL_OP_NO_TICKET,
      })
      return context
    },
  }
}
