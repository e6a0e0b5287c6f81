import type { ServerWritableStream } from '@grpc/grpc-js'
import type { SpiffeBundle } from '../../lib/core/bundle/spiffe-bundle.js'
import { IdentityError } from '../../lib/core/errors.js'
import type { WITBundlesRequest__Output } from '../../lib/gen/WITBundlesRequest.js'
import type { WITBundlesResponse } from '../../lib/gen/WITBundlesResponse.js'
import type { WITSVIDRequest__Output } from '../../lib/gen/WITSVIDRequest.js'
import type { WITSVIDResponse } from '../../lib/gen/WITSVIDResponse.js'
import { type AttestedCaller, noIdentityFor } from './caller.js'
import { type WorkloadApiDeps, workloadCaller } from './context.js'
import { type StreamMessage, serveUpdates } from './update-stream.js'
import { bundleStream } from './x509-handlers.js'

/**
 * FetchWITSVID (SPIFFE WIT-SVID draft): a WIT-SVID and its private JWK for every entry the caller is
 * entitled to (or only `spiffe_id`'s), default first; again whenever one is rotated (from half its
 * lifetime). No identity: PERMISSION_DENIED, as for the other RPCs.
 */
export function streamWitSvids(
  deps: WorkloadApiDeps,
  call: ServerWritableStream<WITSVIDRequest__Output, WITSVIDResponse>,
  caller: AttestedCaller,
): void {
  const wanted = call.request?.spiffe_id ?? ''
  serveUpdates(
    call,
    caller.facts,
    {
      onChange: (l) => deps.identities.onChange(l),
      next: (force): StreamMessage<WITSVIDResponse> | undefined => {
        if (!deps.identities.bundles()) {
          if (force) throw new IdentityError('ERR_NO_IDENTITY', 'no identity issued')
          return undefined
        }
        const all = deps.identities.entriesFor(caller.selectors)
        const entries = wanted === '' ? all : all.filter((e) => e.spiffeId.toString() === wanted)
        if (entries.length === 0) throw noIdentityFor(caller)
        const view = deps.identities.witsFor(entries)
        if (view.pending > 0 && view.wits.length < entries.length && (view.wits.length === 0 || !force))
          return undefined
        if (view.wits.length === 0)
          throw view.error instanceof IdentityError
            ? view.error
            : new IdentityError('ERR_WORKLOAD_API_UNAVAILABLE', 'no WIT-SVID could be minted now; retry')
        return {
          key: view.wits.map((w) => `${w.entry.id}@${w.issuedAtMs}`).join(','),
          message: {
            svids: view.wits.map((w) => ({
              spiffe_id: w.entry.spiffeId.toString(),
              wit_svid: w.token,
              wit_svid_key: w.keyJwk,
              hint: w.entry.hint,
            })),
          },
          onSent: () => {
            for (const w of view.wits) {
              deps.audit.svidIssued({
                spiffeId: w.entry.spiffeId.toString(),
                kind: 'wit',
                entryId: w.entry.id,
                ttlMs: w.expiresAtMs - deps.clock.nowMs(),
                caller: workloadCaller(caller.facts),
              })
            }
          },
        }
      },
    },
    deps,
  )
}

/** A bundle's WIT authorities as a plain JWKS (FetchWITBundles' map values are strings). */
function witJwks(bundle: SpiffeBundle): string {
  return bundle.toWitBundle().marshal()
}

/** FetchWITBundles: a JWKS of `wit-svid` keys per trust domain ID; sent again only when it changes. */
export function streamWitBundles(
  deps: WorkloadApiDeps,
  call: ServerWritableStream<WITBundlesRequest__Output, WITBundlesResponse>,
  caller: AttestedCaller,
): void {
  const source = bundleStream(deps, caller, (list) => {
    const bundles: Record<string, string> = {}
    for (const b of list) bundles[b.trustDomain.idString()] = witJwks(b)
    return { bundles }
  })
  serveUpdates(call, caller.facts, source, deps)
}
