import type { ServerWritableStream } from '@grpc/grpc-js'
import { IdentityError } from '../../lib/core/errors.js'
import type { RevocationList } from '../../lib/core/revocation.js'
import type { RevocationsHandlers } from '../../lib/gen/tessera/workload/v1/Revocations.js'
import type { WatchRevocationsRequest__Output } from '../../lib/gen/tessera/workload/v1/WatchRevocationsRequest.js'
import type { WatchRevocationsResponse } from '../../lib/gen/tessera/workload/v1/WatchRevocationsResponse.js'
import { revocationToWire } from '../../lib/workload/revocation-wire.js'
import { type AttestedCaller, noIdentityFor } from './caller.js'
import type { WorkloadApiDeps } from './context.js'
import { serveUpdates } from './update-stream.js'
import { stream } from './workload-service.js'

/** A key per list object: a new list (a push or a prune) is sent, the same one is not. */
const listKeys = new WeakMap<RevocationList, string>()
let lastKey = 0

function keyOf(list: RevocationList): string {
  let key = listKeys.get(list)
  if (key === undefined) {
    key = String(++lastKey)
    listKeys.set(list, key)
  }
  return key
}

/**
 * WatchRevocations: the revocations the agent holds at once, then again on every change. Who may
 * read them: exactly who may read the bundles (a caller with an identity here, or any attested
 * caller under `allowUnauthenticatedVerifiers`): a verifier needs them as it needs the bundles.
 */
function streamRevocations(
  deps: WorkloadApiDeps,
  call: ServerWritableStream<WatchRevocationsRequest__Output, WatchRevocationsResponse>,
  caller: AttestedCaller,
): void {
  serveUpdates(
    call,
    caller.facts,
    {
      onChange: (l) => deps.identities.onChange(l),
      next: (force) => {
        if (deps.identities.bundles() === undefined) {
          if (force) throw new IdentityError('ERR_NO_IDENTITY', 'no identity issued')
          return undefined
        }
        if (deps.identities.entriesFor(caller.selectors).length === 0 && !deps.allowUnauthenticatedVerifiers)
          throw noIdentityFor(caller)
        const list = deps.identities.revocations()
        return { key: keyOf(list), message: { revocations: list.revocations.map(revocationToWire) } }
      },
    },
    deps,
  )
}

/** `tessera.workload.v1.Revocations`, a Tessera service beside the standard Workload API on its socket. */
export function revocationHandlers(deps: WorkloadApiDeps): RevocationsHandlers {
  return { WatchRevocations: stream(deps, 'WatchRevocations', streamRevocations) }
}
