import type { X509BundleSource } from '../bundle/bundle-source.js'
import { IdentityError } from '../errors.js'
import type { SpiffeId } from '../spiffe-id.js'
import { type Certificate, KeyUsageBit } from './certificate.js'
import { verifyCertificateSignature } from './signature.js'
import { validateLeaf } from './x509-svid.js'

/** A peer whose X509-SVID chained to the bundle of its own trust domain. */
export interface VerifiedX509Peer {
  readonly id: SpiffeId
  /** The path that verified: leaf, intermediates, and the bundle authority last. */
  readonly path: ReadonlyArray<Certificate>
}

const MAX_PATH = 8

function untrusted(message: string): IdentityError {
  return new IdentityError('ERR_X509_SVID_UNTRUSTED', message)
}

/**
 * Verifies a peer's X509-SVID chain (leaf first) per spec §4 and §7.C–D: the leaf rules, then a path to an
 * authority in the bundle of **the leaf ID's own trust domain** only (bundles are never pooled), with every
 * certificate on the path inside its validity window at `nowMs`, every intermediate a CA with keyCertSign,
 * path-length limits honoured and no unknown critical extension.
 * @throws ERR_X509_SVID_INVALID, ERR_BUNDLE_NOT_FOUND, ERR_X509_SVID_UNTRUSTED, ERR_X509_SVID_EXPIRED
 */
export function verifyX509Svid(
  chain: ReadonlyArray<Certificate>,
  bundles: X509BundleSource,
  nowMs: number,
): VerifiedX509Peer {
  const leaf = chain[0]
  if (!leaf) throw new IdentityError('ERR_X509_SVID_INVALID', 'empty certificate chain')
  const id = validateLeaf(leaf)
  const bundle = bundles.getX509BundleForTrustDomain(id.trustDomain)
  if (!bundle)
    throw new IdentityError('ERR_BUNDLE_NOT_FOUND', `no X.509 bundle for trust domain ${id.trustDomain.name}`)
  checkUsable(leaf, nowMs)
  const path = findPath([leaf], chain.slice(1), bundle.authorities, nowMs)
  if (!path) throw untrusted(`certificate does not chain to the bundle of ${id.trustDomain.name}`)
  return { id, path }
}

function checkUsable(cert: Certificate, nowMs: number): void {
  if (nowMs < cert.notBeforeMs)
    throw new IdentityError('ERR_X509_SVID_EXPIRED', 'certificate is not yet valid')
  if (nowMs > cert.notAfterMs) throw new IdentityError('ERR_X509_SVID_EXPIRED', 'certificate has expired')
  if (cert.unhandledCriticalExtensions.length > 0)
    throw untrusted('certificate has an unhandled critical extension')
}

/** Depth-first search for a path from the last certificate of `path` to one of `roots`. */
function findPath(
  path: Certificate[],
  intermediates: ReadonlyArray<Certificate>,
  roots: ReadonlyArray<Certificate>,
  nowMs: number,
): Certificate[] | undefined {
  const current = path[path.length - 1]
  if (!current || path.length > MAX_PATH) return undefined
  for (const root of roots) {
    if (issued(root, current) && caAllowsDepth(root, path.length - 1)) {
      checkUsable(root, nowMs)
      return [...path, root]
    }
  }
  for (const ca of intermediates) {
    if (path.includes(ca) || !isSigningCa(ca) || !issued(ca, current) || !caAllowsDepth(ca, path.length - 1))
      continue
    checkUsable(ca, nowMs)
    const found = findPath([...path, ca], intermediates, roots, nowMs)
    if (found) return found
  }
  return undefined
}

/** True when `issuer`'s subject names `child`'s issuer byte for byte, the key IDs agree, and the signature verifies. */
function issued(issuer: Certificate, child: Certificate): boolean {
  if (!issuer.subjectDer.equals(child.issuerDer)) return false
  if (issuer.subjectKeyId && child.authorityKeyId && !issuer.subjectKeyId.equals(child.authorityKeyId))
    return false
  return verifyCertificateSignature(child, issuer.publicKey)
}

function isSigningCa(cert: Certificate): boolean {
  return cert.basicConstraints?.isCa === true && cert.keyUsage?.bits.has(KeyUsageBit.keyCertSign) !== false
}

/** pathLenConstraint: how many intermediate CAs may follow this CA below it. */
function caAllowsDepth(ca: Certificate, intermediatesBelow: number): boolean {
  const limit = ca.basicConstraints?.pathLen
  return limit === undefined || intermediatesBelow <= limit
}
