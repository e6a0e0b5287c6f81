import type { ServerWritableStream } from '@grpc/grpc-js'
import type { SpiffeBundle } from '../../lib/core/bundle/spiffe-bundle.js'
import { IdentityError } from '../../lib/core/errors.js'
import type { JWTBundlesRequest__Output } from '../../lib/gen/JWTBundlesRequest.js'
import type { JWTBundlesResponse } from '../../lib/gen/JWTBundlesResponse.js'
import type { X509BundlesRequest__Output } from '../../lib/gen/X509BundlesRequest.js'
import type { X509BundlesResponse } from '../../lib/gen/X509BundlesResponse.js'
import type { X509SVIDRequest__Output } from '../../lib/gen/X509SVIDRequest.js'
import type { X509SVIDResponse } from '../../lib/gen/X509SVIDResponse.js'
import { bundleKey } from '../manager/trust-bundles.js'
import { type AttestedCaller, noIdentityFor } from './caller.js'
import { type WorkloadApiDeps, workloadCaller } from './context.js'
import { bundleMap, federatedDomains, jwksJson, uniqueByHint, x509Der, x509SvidResponse } from './messages.js'
import { type StreamMessage, serveUpdates } from './update-stream.js'

const noIdentity = () => new IdentityError('ERR_NO_IDENTITY', 'no identity issued')

/** FetchX509SVID: every SVID the caller is entitled to, default first; again on every change. */
export function streamX509Svids(
  deps: WorkloadApiDeps,
  call: ServerWritableStream<X509SVIDRequest__Output, X509SVIDResponse>,
  caller: AttestedCaller,
): void {
  serveUpdates(
    call,
    caller.facts,
    {
      onChange: (l) => deps.identities.onChange(l),
      next: (force): StreamMessage<X509SVIDResponse> | undefined => {
        const view = deps.identities.x509For(caller.selectors)
        const bundles = deps.identities.bundles()
        if ((view.pending > 0 || !bundles) && !force) return undefined
        const svids = uniqueByHint(view.svids)
        if (!bundles) throw noIdentity()
        if (svids.length === 0) throw noIdentityFor(caller)
        const federated = federatedDomains(svids).map((td) => bundles.federated.get(td.name))
        const key = [
          ...svids.map((s) => `${s.entry.id}@${s.issuedAtMs}`),
          bundleKey(bundles.own),
          ...federated.map((b) => (b ? bundleKey(b) : 0)),
        ].join(',')
        return {
          key,
          message: x509SvidResponse(svids, bundles),
          onSent: () => {
            for (const s of svids) {
              deps.audit.svidIssued({
                spiffeId: s.id.toString(),
                kind: 'x509',
                entryId: s.entry.id,
                ttlMs: s.expiresAtMs - deps.clock.nowMs(),
                caller: workloadCaller(caller.facts),
                correlationId: caller.correlationId,
              })
            }
          },
        }
      },
    },
    deps,
  )
}

/**
 * The bundles a caller may see: the own trust domain's and those its entries federate with. A caller
 * with no identity gets PERMISSION_DENIED, or only the own bundle under `allowUnauthenticatedVerifiers`.
 */
function bundlesFor(
  deps: WorkloadApiDeps,
  caller: AttestedCaller,
  force: boolean,
): SpiffeBundle[] | undefined {
  const bundles = deps.identities.bundles()
  if (!bundles) {
    if (force) throw noIdentity()
    return undefined
  }
  const entries = deps.identities.entriesFor(caller.selectors)
  if (entries.length === 0) {
    if (deps.allowUnauthenticatedVerifiers) return [bundles.own]
    throw noIdentityFor(caller)
  }
  const out = [bundles.own]
  for (const e of entries) {
    for (const td of e.federatesWith) {
      const b = bundles.federated.get(td.name)
      if (b && !out.includes(b)) out.push(b)
    }
  }
  return out
}

/** A bundle stream for `caller`: the bundles it may see (see `bundlesFor`), encoded by `encode`. */
export function bundleStream<T>(
  deps: WorkloadApiDeps,
  caller: AttestedCaller,
  encode: (b: ReadonlyArray<SpiffeBundle>) => T,
) {
  return {
    onChange: (l: () => void) => deps.identities.onChange(l),
    next: (force: boolean): StreamMessage<T> | undefined => {
      const list = bundlesFor(deps, caller, force)
      if (!list) return undefined
      return { key: list.map(bundleKey).join(','), message: encode(list) }
    },
  }
}

/** FetchX509Bundles: concatenated DER per trust domain ID; sent again only when it changes. */
export function streamX509Bundles(
  deps: WorkloadApiDeps,
  call: ServerWritableStream<X509BundlesRequest__Output, X509BundlesResponse>,
  caller: AttestedCaller,
): void {
  serveUpdates(
    call,
    caller.facts,
    bundleStream(deps, caller, (list) => ({ bundles: bundleMap(list, x509Der) })),
    deps,
  )
}

/** FetchJWTBundles: a plain JWKS per trust domain ID; sent again only when it changes. */
export function streamJwtBundles(
  deps: WorkloadApiDeps,
  call: ServerWritableStream<JWTBundlesRequest__Output, JWTBundlesResponse>,
  caller: AttestedCaller,
): void {
  serveUpdates(
    call,
    caller.facts,
    bundleStream(deps, caller, (list) => ({ bundles: bundleMap(list, jwksJson) })),
    deps,
  )
}
