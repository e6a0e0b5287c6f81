import { randomUUID } from 'node:crypto'
import type { Metadata, ServerUnaryCall, ServerWritableStream, sendUnaryData } from '@grpc/grpc-js'
import { IdentityError, isIdentityError } from '../../lib/core/errors.js'
import type { SpiffeWorkloadAPIHandlers } from '../../lib/gen/SpiffeWorkloadAPI.js'
import { toServiceError } from '../../lib/grpc/status.js'
import { type AttestedCaller, attestCaller, requireSecurityHeader } from './caller.js'
import { type WorkloadApiDeps, workloadCaller } from './context.js'
import { fetchJwtSvids, validateJwt } from './jwt-handlers.js'
import { noteExecutable, refusalStatus, throttleRefusal } from './refusals.js'
import { streamWitBundles, streamWitSvids } from './wit-handlers.js'
import { streamJwtBundles, streamX509Bundles, streamX509Svids } from './x509-handlers.js'

type Call = { metadata: Metadata; getPeer(): string }

/**
 * Header check, then attestation of the caller's process (spec §2.4 order: INVALID_ARGUMENT first).
 * The caller carries the call's `correlationId` into the audit of what it is given.
 */
async function admitCall(deps: WorkloadApiDeps, call: Call, correlationId: string): Promise<AttestedCaller> {
  requireSecurityHeader(call.metadata)
  const caller = await attestCaller(deps.factsOf(call), deps.attestor)
  noteExecutable(caller)
  return { ...caller, correlationId }
}

/** One call's refusal: which RPC, why, the caller when it was attested, and the call's id. */
interface Failure {
  readonly method: string
  readonly err: unknown
  readonly caller?: AttestedCaller | undefined
  readonly correlationId: string
}

/**
 * Records a refused call (never an ordinary stream end) and turns the error into a status. Refusals
 * are rate-limited per uid and executable (ERR_THROTTLED past the limit) and their audit summarised.
 */
function deny(deps: WorkloadApiDeps, call: Call, failure: Failure) {
  const { method, err, caller, correlationId } = failure
  const facts = deps.factsOf(call)
  const isPending =
    caller !== undefined &&
    isIdentityError(err, 'ERR_NO_IDENTITY') &&
    deps.pending?.noteRefused(caller) === true
  if (err instanceof IdentityError) {
    const refusal = throttleRefusal(deps.throttle, facts, err, isPending)
    const { code, message: reason } = refusal.error
    deps.audit.callDenied({ method, code, reason, caller: workloadCaller(facts), correlationId })
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
    const correlationId = randomUUID()
    admitCall(deps, call, correlationId)
      .then((caller) => {
        deps.streams.open(caller.facts.uid, call)
        const refuse = (err: unknown) => deny(deps, call, { method, err, caller, correlationId })
        body({ ...deps, refuse }, call, caller)
      })
      .catch((err: unknown) => call.emit('error', deny(deps, call, { method, err, correlationId })))
  }
}

/** A unary handler: security header, attestation, then `body`; a refusal audited and throttled like every Workload API refusal. */
export function unary<Req, Res>(
  deps: WorkloadApiDeps,
  method: string,
  body: (req: Req, caller: AttestedCaller, call: ServerUnaryCall<Req, Res>) => Promise<Res>,
  needsCaller = true,
) {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    let caller: AttestedCaller | undefined
    const correlationId = randomUUID()
    const run = async () => {
      if (!needsCaller) {
        requireSecurityHeader(call.metadata)
        return body(call.request, undefined as never, call)
      }
      caller = await admitCall(deps, call, correlationId)
      return body(call.request, caller, call)
    }
    run().then(
      (res) => callback(null, res),
      (err) => callback(deny(deps, call, { method, err, caller, correlationId })),
    )
  }
}

/**
 * The standard SPIFFE Workload API (`SpiffeWorkloadAPI`, spec §2): every call needs the security
 * header; callers are attested from the kernel facts of their connection. The WIT-SVID RPCs are served
 * too (SPIFFE WIT-SVID draft).
 */
export function workloadApiHandlers(deps: WorkloadApiDeps): SpiffeWorkloadAPIHandlers {
  return {
    FetchX509SVID: stream(deps, 'FetchX509SVID', streamX509Svids),
    FetchX509Bundles: stream(deps, 'FetchX509Bundles', streamX509Bundles),
    FetchJWTBundles: stream(deps, 'FetchJWTBundles', streamJwtBundles),
    FetchJWTSVID: unary(deps, 'FetchJWTSVID', (req, caller) => fetchJwtSvids(deps, req, caller)),
    ValidateJWTSVID: unary(deps, 'ValidateJWTSVID', (req) => validateJwt(deps, req), false),
    FetchWITSVID: stream(deps, 'FetchWITSVID', streamWitSvids),
    FetchWITBundles: stream(deps, 'FetchWITBundles', streamWitBundles),
  }
}
