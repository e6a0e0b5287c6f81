import { chmod, chown } from 'node:fs/promises'
import { dirname } from 'node:path'
import {
  credentials,
  Metadata,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceError,
  type sendUnaryData,
} from '@grpc/grpc-js'
import type { Logger } from 'pino'
import { workloadApi } from '../../common/grpc/protos.js'
import { UdsServer } from '../../common/grpc/uds-server.js'
import { fdOf } from '../../common/peercred/peercred.js'
import { type ProcessFacts, processStartTime, readProcessFacts } from '../../common/peercred/process-facts.js'
import { IdentityError } from '../../lib/core/errors.js'
import type { SpiffeWorkloadAPIHandlers } from '../../lib/gen/SpiffeWorkloadAPI.js'
import type { BeginTaskRequest__Output } from '../../lib/gen/tessera/workload/v1/BeginTaskRequest.js'
import type { EndTaskRequest__Output } from '../../lib/gen/tessera/workload/v1/EndTaskRequest.js'
import type { TasksHandlers } from '../../lib/gen/tessera/workload/v1/Tasks.js'
import { toServiceError } from '../../lib/grpc/status.js'
import type { WorkloadEndpoint } from '../../lib/workload/endpoint.js'
import { tasksApi } from '../../lib/workload/workload-proto.js'
import type { Cancellable, DelegateClient, Subject } from './delegate-client.js'
import { isInTree } from './process-tree.js'

/** The per-launch socket: only the service account (and root) may open it; the tree check does the rest. */
export const LAUNCH_SOCKET_MODE = 0o600
export const LAUNCH_SOCKET_DIR_MODE = 0o700

/** How long a unary call to the agent may take. */
const CALL_DEADLINE_MS = 10_000
/** How long a BeginTask may wait (for a human's approval of a scope that needs one). */
const TASK_APPROVAL_DEADLINE_MS = 15 * 60_000

/** What the per-launch Workload API serves and to whom. */
export interface LaunchApiOptions {
  readonly socketPath: string
  readonly launchName: string
  /** The launched root process: only it and its descendants are answered. */
  readonly rootPid: () => number | undefined
  /** The service account: owner of the socket and its directory. */
  readonly uid: number
  readonly gid: number
  readonly delegate: DelegateClient
  readonly agent: WorkloadEndpoint
  readonly log: Logger
}

/** A running per-launch Workload API. */
export interface LaunchApi {
  close(): Promise<void>
}

function requireHeader(metadata: Metadata): void {
  const v = metadata.get('workload.spiffe.io')
  if (v.length !== 1 || v[0] !== 'true')
    throw new IdentityError('ERR_REQUEST_INVALID', 'security header missing from request')
}

/**
 * Admits a connection only from the launched process or a descendant: SO_PEERPIDFD facts, then the
 * ppid chain up to the root, then the peer's pidfd still alive (only then was the chain its own).
 */
async function admitInTree(fd: number, options: LaunchApiOptions): Promise<ProcessFacts> {
  const facts = await readProcessFacts(fd)
  const root = options.rootPid()
  if (root === undefined || !(await isInTree(facts.pid, root)) || !facts.isAlive()) {
    facts.close()
    throw new IdentityError(
      'ERR_LAUNCH_NOT_IN_TREE',
      `pid ${facts.pid} (uid ${facts.uid}) is not the launched process or one of its descendants`,
    )
  }
  return facts
}

/**
 * Serves the standard SPIFFE Workload API for one launch on its own Unix socket: each caller in the
 * launched tree gets what the agent's delegated identity API grants that very process (its own
 * attestation plus `tessera:launch:NAME`). go-spiffe and lib clients work unchanged.
 */
export async function startLaunchApi(options: LaunchApiOptions): Promise<LaunchApi> {
  const { log } = options
  const server: UdsServer<ProcessFacts> = new UdsServer<ProcessFacts>({
    path: options.socketPath,
    dirMode: LAUNCH_SOCKET_DIR_MODE,
    socketMode: LAUNCH_SOCKET_MODE,
    admit: (socket, creds) =>
      admitInTree(fdOf(socket), options).catch((err: unknown) => {
        log.warn(
          { pid: creds.pid, uid: creds.uid, code: (err as IdentityError).code },
          'Launch socket connection refused.',
        )
        throw err
      }),
    release: (facts) => facts.close(),
    maxMessageBytes: 64 * 1024,
    log,
  })
  const subjectOf = async (call: { getPeer(): string; metadata: Metadata }): Promise<Subject> => {
    requireHeader(call.metadata)
    const facts = server.peerOf(call)
    if (!facts?.isAlive()) throw new IdentityError('ERR_ATTESTATION_FAILED', 'caller exited')
    const startTime = await processStartTime(facts.pid)
    if (!facts.isAlive()) throw new IdentityError('ERR_ATTESTATION_FAILED', 'caller exited')
    return { pid: facts.pid, startTime, launchName: options.launchName }
  }
  const agentApi = new (workloadApi().SpiffeWorkloadAPI)(
    options.agent.grpcTarget,
    credentials.createInsecure(),
  )
  const handlers = launchHandlers(options.delegate, subjectOf, agentApi)
  server.grpc.addService(workloadApi().SpiffeWorkloadAPI.service, handlers)
  server.grpc.addService(
    tasksApi().tessera.workload.v1.Tasks.service,
    taskHandlers(options.delegate, subjectOf),
  )
  await server.listen()
  await chown(options.socketPath, options.uid, options.gid)
  await chown(dirname(options.socketPath), options.uid, options.gid)
  await chmod(dirname(options.socketPath), LAUNCH_SOCKET_DIR_MODE)
  log.info({ socket: options.socketPath }, 'Launch Workload API ready.')
  return {
    close: async () => {
      agentApi.close()
      await server.close()
    },
  }
}

type SubjectOf = (call: { getPeer(): string; metadata: Metadata }) => Promise<Subject>
type AgentWorkloadClient = InstanceType<ReturnType<typeof workloadApi>['SpiffeWorkloadAPI']>

/** A stream relayed from one delegated subscription, ended when either side ends. */
function relay<Req, Res>(
  subjectOf: SubjectOf,
  open: (subject: Subject, write: (m: Res) => void, fail: (e: ServiceError) => void) => Cancellable,
) {
  return (call: ServerWritableStream<Req, Res>) => {
    subjectOf(call).then(
      (subject) => {
        const sub = open(
          subject,
          (m) => call.write(m),
          (e) => call.emit('error', e),
        )
        call.once('cancelled', () => sub.cancel())
        call.once('close', () => sub.cancel())
      },
      (err: unknown) => call.emit('error', toServiceError(err)),
    )
  }
}

function trustDomainIdOf(spiffeId: string): string {
  const m = /^spiffe:\/\/[^/]+/.exec(spiffeId)
  return m ? m[0] : spiffeId
}

function launchHandlers(
  delegate: DelegateClient,
  subjectOf: SubjectOf,
  agent: AgentWorkloadClient,
): SpiffeWorkloadAPIHandlers {
  return {
    FetchX509SVID: relay(subjectOf, (subject, write, fail) =>
      delegate.subscribeX509(subject, {
        onMessage: (m) => write({ svids: m.svids, crl: [], federated_bundles: m.federated_bundles }),
        onError: fail,
      }),
    ),
    FetchX509Bundles: relay(subjectOf, (subject, write, fail) =>
      delegate.subscribeX509(subject, {
        onMessage: (m) => {
          const first = m.svids[0]
          const own = first ? { [trustDomainIdOf(first.spiffe_id)]: first.bundle } : {}
          write({ crl: [], bundles: { ...m.federated_bundles, ...own } })
        },
        onError: fail,
      }),
    ),
    FetchJWTBundles: relay(subjectOf, (subject, write, fail) =>
      delegate.subscribeJwtBundles(subject, {
        onMessage: (m) => write({ bundles: m.bundles }),
        onError: fail,
      }),
    ),
    FetchJWTSVID: (call, callback) => {
      subjectOf(call)
        .then((subject) =>
          delegate.fetchJwt(subject, call.request.audience, call.request.spiffe_id, CALL_DEADLINE_MS),
        )
        .then(
          (res) => callback(null, { svids: res.svids }),
          (err: unknown) => callback(isServiceError(err) ? err : toServiceError(err)),
        )
    },
    ValidateJWTSVID: (call: ServerUnaryCall<never, never>, callback: sendUnaryData<never>) => {
      // Validation needs no identity: the agent's own answer, for any caller in the tree.
      try {
        requireHeader(call.metadata)
      } catch (err) {
        return callback(toServiceError(err))
      }
      const md = new Metadata()
      md.set('workload.spiffe.io', 'true')
      agent.ValidateJWTSVID(call.request, md, { deadline: Date.now() + CALL_DEADLINE_MS }, (err, res) =>
        callback(err, res as never),
      )
    },
  } as SpiffeWorkloadAPIHandlers
}

/** A unary call relayed as the caller's process: the agent's answer or refusal passed on as it is. */
function asCaller<Req, Res>(subjectOf: SubjectOf, send: (subject: Subject, req: Req) => Promise<Res>) {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    subjectOf(call)
      .then((subject) => send(subject, call.request))
      .then(
        (res) => callback(null, res),
        (err: unknown) => callback(isServiceError(err) ? err : toServiceError(err)),
      )
  }
}

/**
 * Tessera's task service for the tree (`tessera task begin` inside a launch): BeginTask and EndTask
 * as the calling process, through the agent's delegated API; a task ends when that process exits.
 */
function taskHandlers(delegate: DelegateClient, subjectOf: SubjectOf): TasksHandlers {
  return {
    // A scope that needs a human keeps BeginTask open until someone decides: no short deadline.
    BeginTask: asCaller(subjectOf, (subject, req: BeginTaskRequest__Output) =>
      delegate.beginTask(subject, req, TASK_APPROVAL_DEADLINE_MS),
    ),
    EndTask: asCaller(subjectOf, (subject, req: EndTaskRequest__Output) =>
      delegate.endTask(subject, req, CALL_DEADLINE_MS),
    ),
    ListTasks: (_call, callback) =>
      callback(toServiceError(new IdentityError('ERR_UNIMPLEMENTED', 'ListTasks is not served in a launch'))),
  }
}

function isServiceError(err: unknown): err is ServiceError {
  return (
    typeof (err as ServiceError | null)?.code === 'number' && (err as ServiceError).metadata !== undefined
  )
}
