import { createPublicKey, sign, verify } from 'node:crypto'
import { SpiffeId } from '../lib/core/spiffe-id.js'
import { TrustDomain } from '../lib/core/trust-domain.js'
import { createCsr, parseCsr } from '../lib/core/x509/csr.js'
import { generateP256Key } from '../server/ca/key-generation.js'
import { signX509SvidFromCsr } from '../server/ca/svid-signer.js'
import { X509Ca } from '../server/ca/x509-ca.js'
import { type BenchResult, compare, measureAsync, measureSync } from './harness.js'

/**
 * X509-SVIDs signed from CSRs on one core, against the raw crypto one SVID needs: one P-256
 * `crypto.verify` (the CSR's signature) plus one `crypto.sign` (the certificate), measured in the same run.
 * DESIGN §8: ratio ≥ 0.5.
 */
export async function benchCaSigning(): Promise<BenchResult[]> {
  const td = TrustDomain.parse('bench.example')
  const ca = X509Ca.createRoot({
    trustDomain: td,
    key: await generateP256Key(),
    nowMs: Date.now(),
    ttlMs: 24 * 3600_000,
  })
  const workloadKey = await generateP256Key()
  const csrDer = createCsr(workloadKey)
  const id = SpiffeId.parse('spiffe://bench.example/ns/prod/sa/web')

  // The raw limit: the same verify and sign the issuance does, on inputs of the same size.
  const csr = parseCsr(csrDer)
  const csrKey = createPublicKey({ key: csr.spkiDer, format: 'der', type: 'spki' })
  const caKey = await generateP256Key()
  const tbsSized = Buffer.alloc(
    ca.issueLeaf({ spkiDer: csr.spkiDer, id, ttlMs: 3600_000, nowMs: Date.now() }).der.length - 80,
    7,
  )
  const verifyRate = measureSync(() => verify('sha256', csr.infoDer, csrKey, csr.signature))
  const signRate = measureSync(() => sign('sha256', tbsSized, caKey))
  const rawPerSvid = 1 / (1 / verifyRate + 1 / signRate)

  const nowMs = Date.now()
  const issueRate = await measureAsync(() => signX509SvidFromCsr(ca, { csrDer, id, ttlMs: 3600_000, nowMs }))
  const importThenVerify = measureSync(() =>
    verify(
      'sha256',
      csr.infoDer,
      createPublicKey({ key: csr.spkiDer, format: 'der', type: 'spki' }),
      csr.signature,
    ),
  )
  const templateOnly = measureSync(() => ca.issueLeaf({ spkiDer: csr.spkiDer, id, ttlMs: 3600_000, nowMs }))
  return [
    compare('server: X509-SVIDs signed from CSRs (1 core) vs raw verify+sign', issueRate, rawPerSvid, 0.5),
    compare(
      'server: X509-SVIDs signed from CSRs vs raw createPublicKey+verify+sign',
      issueRate,
      1 / (1 / importThenVerify + 1 / signRate),
    ),
    {
      ...compare(
        'server: X509-SVID leaf build+sign (key already verified) vs raw sign',
        templateOnly,
        signRate,
      ),
      target: '≥ 10,000 ops/s',
      met: templateOnly >= 10_000,
    },
    {
      name: 'raw: P-256 crypto.verify (CSR)',
      value: Math.round(verifyRate),
      unit: 'ops/s',
      baseline: null,
      ratio: null,
    },
    {
      name: 'raw: P-256 crypto.sign (certificate)',
      value: Math.round(signRate),
      unit: 'ops/s',
      baseline: null,
      ratio: null,
    },
  ]
}
