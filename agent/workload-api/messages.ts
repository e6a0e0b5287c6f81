import type { SpiffeBundle } from '../../lib/core/bundle/spiffe-bundle.js'
import type { TrustDomain } from '../../lib/core/trust-domain.js'
import type { X509BundlesResponse } from '../../lib/gen/X509BundlesResponse.js'
import type { X509SVIDResponse } from '../../lib/gen/X509SVIDResponse.js'
import type { CachedX509Svid } from '../manager/svid-cache.js'
import type { TrustBundleSnapshot } from '../manager/trust-bundles.js'

const derCache = new WeakMap<SpiffeBundle, Buffer>()
const jwksCache = new WeakMap<SpiffeBundle, Buffer>()

/** A bundle's X.509 authorities as concatenated DER (computed once per bundle object). */
export function x509Der(bundle: SpiffeBundle): Buffer {
  let der = derCache.get(bundle)
  if (!der) {
    der = bundle.toX509Bundle().marshalDer()
    derCache.set(bundle, der)
  }
  return der
}

/** A bundle's JWT authorities as the Workload API's plain JWKS JSON (computed once per bundle object). */
export function jwksJson(bundle: SpiffeBundle): Buffer {
  let json = jwksCache.get(bundle)
  if (!json) {
    json = Buffer.from(bundle.toJwtBundle().marshal())
    jwksCache.set(bundle, json)
  }
  return json
}

/** Drops every SVID after the first with the same non-empty hint (spec §2.3: hints are unique; the oldest entry wins). */
export function uniqueByHint(svids: ReadonlyArray<CachedX509Svid>): CachedX509Svid[] {
  const seen = new Set<string>()
  return svids.filter((s) => {
    if (s.entry.hint === '') return true
    if (seen.has(s.entry.hint)) return false
    seen.add(s.entry.hint)
    return true
  })
}

/** The trust domains the given SVIDs' entries federate with, each once. */
export function federatedDomains(svids: ReadonlyArray<CachedX509Svid>): TrustDomain[] {
  const out = new Map<string, TrustDomain>()
  for (const s of svids) for (const td of s.entry.federatesWith) out.set(td.name, td)
  return [...out.values()]
}

/** An X509SVIDResponse: every SVID with its own trust domain's bundle, plus the federated bundles. */
export function x509SvidResponse(
  svids: ReadonlyArray<CachedX509Svid>,
  bundles: TrustBundleSnapshot,
): X509SVIDResponse {
  const federated: Record<string, Buffer> = {}
  for (const td of federatedDomains(svids)) {
    const b = bundles.federated.get(td.name)
    if (b) federated[td.idString()] = x509Der(b)
  }
  return {
    svids: svids.map((s) => ({
      spiffe_id: s.id.toString(),
      x509_svid: s.chainDer,
      x509_svid_key: s.keyPkcs8,
      bundle: x509Der(bundles.own),
      hint: s.entry.hint,
    })),
    federated_bundles: federated,
  }
}

/** Bundles keyed by trust domain ID (`spiffe://td`), own first, for the bundle streams. */
export function bundleMap(
  bundles: ReadonlyArray<SpiffeBundle>,
  encode: (b: SpiffeBundle) => Buffer,
): Record<string, Buffer> {
  const out: Record<string, Buffer> = {}
  for (const b of bundles) out[b.trustDomain.idString()] = encode(b)
  return out
}

/** An X509BundlesResponse for the given bundles. */
export function x509BundlesResponse(bundles: ReadonlyArray<SpiffeBundle>): X509BundlesResponse {
  return { bundles: bundleMap(bundles, x509Der) }
}
