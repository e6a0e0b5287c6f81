import type { Metadata, ServerUnaryCall, ServerWritableStream, sendUnaryData } from '@grpc/grpc-js'
import { IdentityError } from '../../lib/core/errors.js'
import type { SpiffeWorkloadAPIHandlers } from '../../lib/gen/SpiffeWorkloadAPI.js'
import { failStream, toServiceError } from '../../lib/grpc/status.js'
import { type AttestedCaller, attestCaller, requireSecurityHeader } from './caller.js'
import { type WorkloadApiDeps, workloadCaller } from './context.js'
import { fetchJwtSvids, validateJwt } from './jwt-handlers.js'
import { streamJwtBundles, streamX509Bundles, streamX509Svids } from './x509-handlers.js'

type Call = { metadata: Metadata; getPeer(): string }

/** Header check, then attestation of the caller's process (spec §2.4 order: INVALID_ARGUMENT first). */
async function admitCall(deps: WorkloadApiDeps, call: Call): Promise<AttestedCaller> {
  requireSecurityHeader(call.metadata)
  return attestCaller(deps.factsOf(call), deps.attestor)
}

/** Records a refused call (never an ordinary stream end) and turns the error into a status. */
function deny(deps: WorkloadApiDeps, method: string, call: Call, err: unknown) {
  const facts = deps.factsOf(call)
  if (err instanceof IdentityError) {
    deps.audit.callDenied({ method, code: err.code, reason: err.message, caller: workloadCaller(facts) })
    deps.log.debug({ method, code: err.code, pid: facts?.pid, uid: facts?.uid }, 'Workload API call refused.')
  } else {
    deps.log.error({ method, err, pid: facts?.pid }, 'Workload API call failed.')
  }
  return toServiceError(err)
}

function stream<Req, Res>(
  deps: WorkloadApiDeps,
  method: string,
  body: (call: ServerWritableStream<Req, Res>, caller: AttestedCaller) => void,
) {
  return (call: ServerWritableStream<Req, Res>) => {
    admitCall(deps, call).then(
      (caller) => body(call, caller),
      (err) => {
        deny(deps, method, call, err)
        failStream(call, err)
      },
    )
  }
}

function unary<Req, Res>(
  deps: WorkloadApiDeps,
  method: string,
  body: (req: Req, caller: AttestedCaller) => Promise<Res>,
  needsCaller = true,
) {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    const run = async () => {
      if (!needsCaller) {
        requireSecurityHeader(call.metadata)
        return body(call.request, undefined as never)
      }
      return body(call.request, await admitCall(deps, call))
    }
    run().then(
      (res) => callback(null, res),
      (err) => callback(deny(deps, method, call, err)),
    )
  }
}

const unimplemented = (call: { emit(e: 'error', err: unknown): boolean }) =>
  failStream(call, new IdentityError('ERR_UNIMPLEMENTED', 'WIT-SVIDs are not supported'))

/**
 * The standard SPIFFE Workload API (`SpiffeWorkloadAPI`, spec §2): every call needs the security
 * header; callers are attested from the kernel facts of their connection; WIT RPCs are UNIMPLEMENTED.
 */
export function workloadApiHandlers(deps: WorkloadApiDeps): SpiffeWorkloadAPIHandlers {
  return {
    FetchX509SVID: stream(deps, 'FetchX509SVID', (call, caller) => streamX509Svids(deps, call, caller)),
    FetchX509Bundles: stream(deps, 'FetchX509Bundles', (call, caller) =>
      streamX509Bundles(deps, call, caller),
    ),
    FetchJWTBundles: stream(deps, 'FetchJWTBundles', (call, caller) => streamJwtBundles(deps, call, caller)),
    FetchJWTSVID: unary(deps, 'FetchJWTSVID', (req, caller) => fetchJwtSvids(deps, req, caller)),
    ValidateJWTSVID: unary(deps, 'ValidateJWTSVID', (req) => validateJwt(deps, req), false),
    FetchWITSVID: unimplemented,
    FetchWITBundles: unimplemented,
  }
}
