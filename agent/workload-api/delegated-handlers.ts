import { randomUUID } from 'node:crypto'
import type { Metadata, ServerUnaryCall, ServerWritableStream, sendUnaryData } from '@grpc/grpc-js'
import type { DelegatedIdentityHandlers } from '../../common/gen/tessera/agent/v1/DelegatedIdentity.js'
import type { DelegatedSubject__Output } from '../../common/gen/tessera/agent/v1/DelegatedSubject.js'
import { readProcessFactsOfPid } from '../../common/peercred/process-facts.js'
import { IdentityError } from '../../lib/core/errors.js'
import { LAUNCH_SELECTOR_KIND, LAUNCH_SELECTOR_TYPE, requireLaunchName } from '../../lib/core/launch-name.js'
import { Selector } from '../../lib/core/selector.js'
import { toServiceError } from '../../lib/grpc/status.js'
import { type AttestedCaller, attestCaller, requireSecurityHeader } from './caller.js'
import { type WorkloadApiDeps, workloadCaller } from './context.js'
import { fetchJwtSvids } from './jwt-handlers.js'
import { beginTask, callWaitOf, endTask, type TaskDeps } from './task-handlers.js'
import { streamJwtBundles, streamX509Svids } from './x509-handlers.js'

/**
 * Who may act for another process: uid 0 only. The launcher needs root anyway (it switches to a
 * service account's uid, creates users and network namespaces), and root can already read and
 * control every process (DESIGN §1), so this grants it nothing it lacks; a non-root delegate could
 * name any pid, another user's included, which would be a new power.
 */
export const DELEGATE_UID = 0

type Call = { metadata: Metadata; getPeer(): string }

/**
 * The delegate (the caller) is attested like any Workload API caller and must be uid 0; the subject
 * process is then attested from its pid (start time checked, pidfd liveness after), and gets the
 * selector `tessera:launch:NAME` when the delegate names a launch.
 * @throws ERR_DELEGATE_UNAUTHORIZED, ERR_DELEGATE_SUBJECT_GONE, ERR_LAUNCH_INVALID, ERR_ATTESTATION_FAILED
 */
async function admitSubject(
  deps: WorkloadApiDeps,
  call: Call,
  subject: DelegatedSubject__Output | null,
): Promise<AttestedCaller> {
  requireSecurityHeader(call.metadata)
  const delegate = await attestCaller(deps.factsOf(call), deps.attestor)
  if (delegate.facts.uid !== DELEGATE_UID)
    throw new IdentityError(
      'ERR_DELEGATE_UNAUTHORIZED',
      `only uid ${DELEGATE_UID} may obtain identities for another process (caller uid ${delegate.facts.uid})`,
    )
  if (!subject) throw new IdentityError('ERR_REQUEST_INVALID', 'subject must be specified')
  const launch = subject.launch_name === '' ? undefined : requireLaunchName(subject.launch_name)
  const facts = await readProcessFactsOfPid(subject.pid, String(subject.start_time))
  try {
    const attested = await attestCaller(facts, deps.attestor)
    const extra = launch ? [Selector.from(LAUNCH_SELECTOR_TYPE, `${LAUNCH_SELECTOR_KIND}:${launch}`)] : []
    return { facts, selectors: [...attested.selectors, ...extra], correlationId: randomUUID() }
  } catch (err) {
    facts.close()
    throw err
  }
}

function deny(deps: WorkloadApiDeps, call: Call, method: string, err: unknown) {
  const facts = deps.factsOf(call)
  if (err instanceof IdentityError) {
    deps.audit.callDenied({ method, code: err.code, reason: err.message, caller: workloadCaller(facts) })
  } else {
    deps.log.error({ method, err, pid: facts?.pid }, 'Delegated identity call failed.')
  }
  return toServiceError(err)
}

function subscribe<Req extends { subject: DelegatedSubject__Output | null }, Res>(
  deps: WorkloadApiDeps,
  method: string,
  body: (deps: WorkloadApiDeps, call: ServerWritableStream<Req, Res>, subject: AttestedCaller) => void,
) {
  return (call: ServerWritableStream<Req, Res>) => {
    admitSubject(deps, call, call.request.subject)
      .then((subject) => {
        call.once('close', () => subject.facts.close())
        call.once('cancelled', () => subject.facts.close())
        deps.streams.open(DELEGATE_UID, call)
        body({ ...deps, refuse: (err) => deny(deps, call, method, err) }, call, subject)
      })
      .catch((err: unknown) => call.emit('error', deny(deps, call, method, err)))
  }
}

/**
 * `tessera.agent.v1.DelegatedIdentity` (DESIGN §13, after SPIRE's Delegated Identity API): what a
 * uid-0 delegate obtains for another process, computed exactly as for that process calling itself.
 */
export function delegatedIdentityHandlers(
  deps: WorkloadApiDeps,
  tasks: TaskDeps | undefined,
): DelegatedIdentityHandlers {
  return {
    SubscribeToX509SVIDs: subscribe(deps, 'DelegatedIdentity/SubscribeToX509SVIDs', (d, call, subject) =>
      streamX509Svids(d, call as unknown as Parameters<typeof streamX509Svids>[1], subject),
    ) as DelegatedIdentityHandlers['SubscribeToX509SVIDs'],
    SubscribeToJWTBundles: subscribe(deps, 'DelegatedIdentity/SubscribeToJWTBundles', (d, call, subject) =>
      streamJwtBundles(d, call as unknown as Parameters<typeof streamJwtBundles>[1], subject),
    ) as DelegatedIdentityHandlers['SubscribeToJWTBundles'],
    FetchJWTSVIDs: asSubject(deps, 'DelegatedIdentity/FetchJWTSVIDs', (req, subject) =>
      fetchJwtSvids(deps, { audience: req.audience, spiffe_id: req.spiffe_id }, subject),
    ),
    BeginTask: asSubject(deps, 'DelegatedIdentity/BeginTask', (req, subject, call) => {
      if (!tasks || !req.request) throw new IdentityError('ERR_UNIMPLEMENTED', 'this agent serves no tasks')
      return beginTask(deps, tasks, req.request, subject, callWaitOf(call))
    }),
    EndTask: asSubject(deps, 'DelegatedIdentity/EndTask', (req, subject) => {
      if (!tasks || !req.request) throw new IdentityError('ERR_UNIMPLEMENTED', 'this agent serves no tasks')
      return endTask(deps, tasks, req.request, subject)
    }),
  }
}

/**
 * A unary delegated call: the delegate and the subject admitted, then `body` as the subject; the
 * subject's pidfd is released when the call ends (a task keeps its own, to end with the process).
 */
function asSubject<Req extends { subject: DelegatedSubject__Output | null }, Res>(
  deps: WorkloadApiDeps,
  method: string,
  body: (req: Req, subject: AttestedCaller, call: ServerUnaryCall<Req, Res>) => Promise<Res>,
) {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    const run = async () => {
      const subject = await admitSubject(deps, call, call.request.subject)
      try {
        return await body(call.request, subject, call)
      } finally {
        subject.facts.close()
      }
    }
    run().then(
      (res) => callback(null, res),
      (err) => callback(deny(deps, call, method, err)),
    )
  }
}
