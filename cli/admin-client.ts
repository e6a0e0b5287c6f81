import {
  type CallOptions,
  type ChannelCredentials,
  type ChannelOptions,
  type ClientUnaryCall,
  credentials,
  type ServiceError,
  type StatusObject,
} from '@grpc/grpc-js'
import type { AgentsClient } from '../common/gen/tessera/admin/v1/Agents.js'
import type { ApprovalsClient } from '../common/gen/tessera/admin/v1/Approvals.js'
import type { AuditCheckpointsClient } from '../common/gen/tessera/admin/v1/AuditCheckpoints.js'
import type { BundlesClient } from '../common/gen/tessera/admin/v1/Bundles.js'
import type { EntriesClient } from '../common/gen/tessera/admin/v1/Entries.js'
import type { JoinTokensClient } from '../common/gen/tessera/admin/v1/JoinTokens.js'
import type { RevocationsClient } from '../common/gen/tessera/admin/v1/Revocations.js'
import { WARNING_TRAILER } from '../common/grpc/admin-warnings.js'
import { adminApi } from '../common/grpc/protos.js'
import { IdentityError } from '../lib/core/errors.js'
import { type AdminTarget, explainAdminFailure } from './admin-failure.js'

/** How long one admin call may take before the CLI gives up. */
export const ADMIN_DEADLINE_MS = 10_000
/** Largest response the CLI reads (a page of large entries, a big federated bundle). */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024

/** The admin API's services, over one admin socket. */
export interface AdminClients extends AdminTarget {
  readonly entries: EntriesClient
  readonly joinTokens: JoinTokensClient
  readonly agents: AgentsClient
  readonly bundles: BundlesClient
  readonly approvals: ApprovalsClient
  readonly checkpoints: AuditCheckpointsClient
  readonly revocations: RevocationsClient
  /** Closes every client's channel. */
  close(): void
}

/** The reply callback of a generated client method. */
export type Reply<Res> = (err: ServiceError | null, response?: Res) => void

/** Clients of the admin API over the Unix socket at `socket` (absolute path). Connects lazily. */
export function connectAdmin(socket: string): AdminClients {
  return adminClients({
    target: `unix://${socket}`,
    shownAs: socket,
    socketPath: socket,
    credentials: credentials.createInsecure(),
  })
}

/**
 * The admin API clients on one target; `shownAs` names it in error messages, `options` are
 * added to the channel's.
 */
export function adminClients(to: {
  readonly target: string
  readonly shownAs: string
  /** The Unix socket's path, when the target is one (error messages then say what is wrong with it). */
  readonly socketPath?: string
  readonly credentials: ChannelCredentials
  readonly options?: ChannelOptions
}): AdminClients {
  const api = adminApi().tessera.admin.v1
  const options = { 'grpc.max_receive_message_length': MAX_RESPONSE_BYTES, ...to.options }
  const clients = {
    entries: new api.Entries(to.target, to.credentials, options),
    joinTokens: new api.JoinTokens(to.target, to.credentials, options),
    agents: new api.Agents(to.target, to.credentials, options),
    bundles: new api.Bundles(to.target, to.credentials, options),
    approvals: new api.Approvals(to.target, to.credentials, options),
    checkpoints: new api.AuditCheckpoints(to.target, to.credentials, options),
    revocations: new api.Revocations(to.target, to.credentials, options),
  }
  return {
    socket: to.shownAs,
    ...(to.socketPath === undefined ? {} : { socketPath: to.socketPath }),
    ...clients,
    close: () => {
      for (const client of Object.values(clients)) client.close()
    },
  }
}

/**
 * Runs one unary call with the admin deadline:
 * `await callAdmin(admin, (options, reply) => admin.entries.GetEntry({ id }, options, reply))`.
 * A failure the server gave a stable code to is returned as is (`describeFailure` prints the code);
 * transport failures become errors that name the socket.
 */
export function callAdmin<Res>(
  admin: AdminTarget,
  invoke: (options: CallOptions, reply: Reply<Res>) => void,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    invoke({ deadline: Date.now() + ADMIN_DEADLINE_MS }, (err, response) => {
      if (err) reject(explainAdminFailure(err, admin, ADMIN_DEADLINE_MS))
      else if (response === undefined)
        reject(new IdentityError('ERR_INTERNAL', 'the admin API sent an empty answer'))
      else resolve(response)
    })
  })
}

/**
 * {@link callAdmin} for a write that may come back with warnings (the `tessera-warning` trailers):
 * resolves once both the answer and the call's status are in.
 */
export function callAdminWarned<Res>(
  admin: AdminTarget,
  invoke: (options: CallOptions, reply: Reply<Res>) => ClientUnaryCall,
): Promise<{ response: Res; warnings: string[] }> {
  return new Promise((resolve, reject) => {
    let response: Res | undefined
    let warnings: string[] | undefined
    const settle = () => {
      if (response !== undefined && warnings !== undefined) resolve({ response, warnings })
    }
    const call = invoke({ deadline: Date.now() + ADMIN_DEADLINE_MS }, (err, res) => {
      if (err) reject(explainAdminFailure(err, admin, ADMIN_DEADLINE_MS))
      else if (res === undefined)
        reject(new IdentityError('ERR_INTERNAL', 'the admin API sent an empty answer'))
      else {
        response = res
        settle()
      }
    })
    call.on('status', (s: StatusObject) => {
      warnings = s.metadata.get(WARNING_TRAILER).map(String)
      settle()
    })
  })
}
