import { IdentityError } from '../../lib/core/errors.js'
import type { SpiffeId } from '../../lib/core/spiffe-id.js'
import { parseCsr } from '../../lib/core/x509/csr.js'
import { type ImportedPublicKey, importSpki } from '../../lib/core/x509/public-key.js'
import { verifySignature } from '../../lib/core/x509/signature.js'
import type { IssuedLeaf, X509Ca } from './x509-ca.js'

/** One X509-SVID to sign from a workload's CSR. */
export interface CsrSigningRequest {
  readonly csrDer: Uint8Array
  readonly id: SpiffeId
  readonly dnsNames?: ReadonlyArray<string>
  readonly ttlMs: number
  readonly nowMs: number
}

/**
 * Signs an X509-SVID from a PKCS#10 CSR: the CSR's signature must verify (proof that the requester
 * holds the key), and only its public key is taken; the SPIFFE ID, DNS names and TTL come from the
 * caller (the registration entry), never from the CSR.
 * @throws ERR_CSR_MALFORMED, ERR_CSR_SIGNATURE_INVALID, ERR_KEY_MALFORMED (unsupported key),
 *   and everything {@link X509Ca.issueLeaf} throws
 */
export async function signX509SvidFromCsr(ca: X509Ca, req: CsrSigningRequest): Promise<IssuedLeaf> {
  const csr = parseCsr(req.csrDer)
  const imported = await importSpki(csr.spkiDer)
  checkWorkloadKey(imported)
  if (!verifySignature(csr.signatureAlgorithm, imported.key, csr.infoDer, csr.signature)) {
    throw new IdentityError('ERR_CSR_SIGNATURE_INVALID', 'CSR signature does not verify')
  }
  return ca.issueLeaf({
    spkiDer: csr.spkiDer,
    id: req.id,
    dnsNames: req.dnsNames,
    ttlMs: req.ttlMs,
    nowMs: req.nowMs,
  })
}

/** Workload keys SPIRE issues for: EC P-256 / P-384 and RSA of at least 2048 bits. */
function checkWorkloadKey(imported: ImportedPublicKey): void {
  if (imported.kind === 'ec-p256' || imported.kind === 'ec-p384') return
  if (imported.kind === 'rsa' && imported.modulusBits >= 2048) return
  throw new IdentityError(
    'ERR_KEY_MALFORMED',
    'workload key must be EC P-256, EC P-384 or RSA of at least 2048 bits',
  )
}
