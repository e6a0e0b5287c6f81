import type { KeyObject } from 'node:crypto'
import { X509Bundle } from '../../lib/core/bundle/x509-bundle.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import { TrustDomain } from '../../lib/core/trust-domain.js'
import { createCsr } from '../../lib/core/x509/csr.js'
import { encodePem } from '../../lib/core/x509/pem.js'
import { exportPkcs8Der } from '../../lib/core/x509/private-key.js'
import { parseX509Svid, type X509Svid } from '../../lib/core/x509/x509-svid.js'
import { generateP256Key } from '../../server/ca/key-generation.js'
import { signX509SvidFromCsr } from '../../server/ca/svid-signer.js'
import { X509Ca } from '../../server/ca/x509-ca.js'

const HOUR = 60 * 60 * 1000

/** An SVID issued by a {@link TestCa}, with PEM forms ready for TLS and openssl. */
export interface IssuedTestSvid {
  readonly svid: X509Svid
  readonly certPem: string
  readonly keyPem: string
}

/**
 * A real Tessera CA held in memory, for tests: it mints bundles and SVIDs through the same code the
 * server uses (key generation, CSR, CSR verification, leaf template, signing).
 */
export class TestCa {
  readonly ca: X509Ca
  readonly bundle: X509Bundle

  private constructor(ca: X509Ca, bundleTrustDomain: TrustDomain) {
    this.ca = ca
    this.bundle = X509Bundle.fromAuthorities(bundleTrustDomain, [ca.certificate])
  }

  /**
   * A CA for `trustDomain`. `bundleTrustDomain` lets a test file the CA under another trust domain's bundle
   * (a rogue CA), to prove that bundles are never pooled.
   */
  static async create(
    trustDomain: string,
    opts: { nowMs?: number; ttlMs?: number; bundleTrustDomain?: string } = {},
  ): Promise<TestCa> {
    const td = TrustDomain.parse(trustDomain)
    const ca = X509Ca.createRoot({
      trustDomain: td,
      key: await generateP256Key(),
      nowMs: opts.nowMs ?? Date.now(),
      ttlMs: opts.ttlMs ?? 24 * HOUR,
    })
    return new TestCa(ca, opts.bundleTrustDomain ? TrustDomain.parse(opts.bundleTrustDomain) : td)
  }

  get bundlePem(): string {
    return this.bundle.marshalPem()
  }

  /** Issues an X509-SVID for `id` through a CSR, as the server does for an agent. */
  async issue(
    id: string,
    opts: { nowMs?: number; ttlMs?: number; dnsNames?: string[] } = {},
  ): Promise<IssuedTestSvid> {
    const key: KeyObject = await generateP256Key()
    const leaf = await signX509SvidFromCsr(this.ca, {
      csrDer: createCsr(key),
      id: SpiffeId.parse(id),
      dnsNames: opts.dnsNames,
      ttlMs: opts.ttlMs ?? HOUR,
      nowMs: opts.nowMs ?? Date.now(),
    })
    const keyDer = exportPkcs8Der(key)
    return {
      svid: parseX509Svid(leaf.der, keyDer),
      certPem: encodePem('CERTIFICATE', leaf.der),
      keyPem: encodePem('PRIVATE KEY', keyDer),
    }
  }
}
