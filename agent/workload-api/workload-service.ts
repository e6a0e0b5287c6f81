import type { Metadata, ServerUnaryCall, ServerWritableStream, sendUnaryData } from '@grpc/grpc-js'
import { IdentityError, isIdentityError } from '../../lib/core/errors.js'
import type { SpiffeWorkloadAPIHandlers } from '../../lib/gen/SpiffeWorkloadAPI.js'
import { failStream, toServiceError } from '../../lib/grpc/status.js'
import { type AttestedCaller, attestCaller, requireSecurityHeader } from './caller.js'
import { type WorkloadApiDeps, workloadCaller } from './context.js'
import { fetchJwtSvids, validateJwt } from './jwt-handlers.js'
import { noteExecutable, refusalStatus, throttleRefusal } from './refusals.js'
import { streamJwtBundles, streamX509Bundles, streamX509Svids } from './x509-handlers.js'

type Call = { metadata: Metadata; getPeer(): string }

/** Header check, then attestation of the caller's process (spec §2.4 order: INVALID_ARGUMENT first). */
async function admitCall(deps: WorkloadApiDeps, call: Call): Promise<AttestedCaller> {
  requireSecurityHeader(call.metadata)
  const caller = await attestCaller(deps.factsOf(call), deps.attestor)
  noteExecutable(caller)
  return caller
}

/**
 * Records a refused call (never an ordinary stream end) and turns the error into a status. Refusals
 * are rate-limited per uid and executable (ERR_THROTTLED past the limit) and their audit summarised.
 */
function deny(deps: WorkloadApiDeps, method: string, call: Call, err: unknown, caller?: AttestedCaller) {
  const facts = deps.factsOf(call)
  const isPending =
    caller !== undefined &&
    isIdentityError(err, 'ERR_NO_IDENTITY') &&
    deps.pending?.noteRefused(caller) === true
  if (err instanceof IdentityError) {
    const refusal = throttleRefusal(deps.throttle, facts, err, isPending)
    const { code, message: reason } = refusal.error
    deps.audit.callDenied({ method, code, reason, caller: workloadCaller(facts) })
    deps.log.debug({ method, code, pid: facts?.pid, uid: facts?.uid }, 'Workload API call refused.')
    return refusalStatus(refusal)
  } else {
    deps.log.error({ method, err, pid: facts?.pid }, 'Workload API call failed.')
  }
  return toServiceError(err)
}

/** A server-streaming handler: the security header, attestation, the per-uid stream limit, then `body`. */
export function stream<Req, Res>(
  deps: WorkloadApiDeps,
  method: string,
  body: (deps: WorkloadApiDeps, call: ServerWritableStream<Req, Res>, caller: AttestedCaller) => void,
) {
  return (call: ServerWritableStream<Req, Res>) => {
    admitCall(deps, call)
      .then((caller) => {
        deps.streams.open(caller.facts.uid, call)
        body({ ...deps, refuse: (err) => deny(deps, method, call, err, caller) }, call, caller)
      })
      .catch((err: unknown) => call.emit('error', deny(deps, method, call, err)))
  }
}

function unary<Req, Res>(
  deps: WorkloadApiDeps,
  method: string,
  body: (req: Req, caller: AttestedCaller) => Promise<Res>,
  needsCaller = true,
) {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    let caller: AttestedCaller | undefined
    const run = async () => {
      if (!needsCaller) {
        requireSecurityHeader(call.metadata)
        return body(call.request, undefined as never)
      }
      caller = await admitCall(deps, call)
      return body(call.request, caller)
    }
    run().then(
      (res) => callback(null, res),
      (err) => callback(deny(deps, method, call, err, caller)),
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
    FetchX509SVID: stream(deps, 'FetchX509SVID', streamX509Svids),
    FetchX509Bundles: stream(deps, 'FetchX509Bundles', streamX509Bundles),
    FetchJWTBundles: stream(deps, 'FetchJWTBundles', streamJwtBundles),
    FetchJWTSVID: unary(deps, 'FetchJWTSVID', (req, caller) => fetchJwtSvids(deps, req, caller)),
    ValidateJWTSVID: unary(deps, 'ValidateJWTSVID', (req) => validateJwt(deps, req), false),
    FetchWITSVID: unimplemented,
    FetchWITBundles: unimplemented,
  }
}
