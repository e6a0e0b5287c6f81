import { stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import { type Server, ServerInterceptingCall, type ServerInterceptor, status } from '@grpc/grpc-js'
import type { Logger } from 'pino'
import type { UidConnectionPolicy } from '../../common/grpc/connection-limits.js'
import { adminApi, healthApi } from '../../common/grpc/protos.js'
import { UdsServer } from '../../common/grpc/uds-server.js'
import type { AuditCaller, AuditLog } from '../../common/log/audit-log.js'
import { SummarisingAuditLog } from '../../common/log/audit-summary.js'
import { IdentityError } from '../../lib/core/errors.js'
import { toServiceError } from '../../lib/grpc/status.js'
import { AgentAdminService } from '../agents/agent-admin-service.js'
import { CheckpointService } from '../audit-checkpoints/checkpoint-service.js'
import { ApprovalService } from '../consent/approval-service.js'
import type { ServerContext } from '../context.js'
import { serverHealthHandlers } from '../health/server-health.js'
import { EntryService } from '../registration/entry-service.js'
import { JoinTokenService } from '../registration/join-token-service.js'
import { createAgentHandlers } from './agent-handlers.js'
import { createApprovalHandlers } from './approval-handlers.js'
import { createBundleHandlers } from './bundle-handlers.js'
import { createCheckpointHandlers } from './checkpoint-handlers.js'
import { createEntriesHandlers } from './entries-handlers.js'
import { createJoinTokenHandlers } from './join-token-handlers.js'
import { createRevocationHandlers, revokeEntry } from './revocation-handlers.js'
import type { HandlerKit } from './unary.js'

/** Largest admin request accepted; a bigger one is refused with RESOURCE_EXHAUSTED. */
export const ADMIN_MAX_MESSAGE_BYTES = 1024 * 1024

/** A running admin API. */
export interface AdminApi {
  /** Stops accepting, lets running calls finish briefly, removes the socket. */
  close(): Promise<void>
}

/** Options of {@link startAdminApi}; tests and benchmarks change them. */
export interface AdminApiOptions {
  readonly maxMessageBytes?: number
  /** The server's own uid, always allowed; `process.getuid()` by default. */
  readonly serverUid?: number
  /** Connections one admin uid may hold at once; default {@link ADMIN_CONNECTIONS_PER_UID}. */
  readonly maxConnectionsPerUid?: number
}

/** Admin connections one admin uid may hold at once (each CLI command opens one). */
export const ADMIN_CONNECTIONS_PER_UID = 128
/** An admin connection with no call in flight and no stream open this long is closed. */
export const ADMIN_IDLE_TIMEOUT_MS = 60_000

/** Who is on an admin connection, from the kernel (SO_PEERCRED) at accept. */
interface AdminPeer {
  readonly uid: number
  readonly pid: number
  readonly isAdmin: boolean
}

/**
 * Serves the admin API (DESIGN §4) on `ctx.settings.adminSocket`. Every connection's peer uid is
 * read from the kernel (SO_PEERCRED) at accept: only the server's own uid and `ctx.settings.adminUids`
 * may connect; any other uid's connection is closed at once, before any byte is read, and audited
 * (`call.denied`, method `connect`, summarised when repeated), so no number of its connections can
 * lock the admin out. Each admin uid may hold {@link ADMIN_CONNECTIONS_PER_UID} connections. As a
 * second line, a call from a non-admin peer is refused with PERMISSION_DENIED (ERR_PEER_UNAUTHORIZED)
 * before any handler runs.
 *
 * File modes: with no extra admin uid, the socket is 0600 (and a directory created for it 0700), so
 * no other user can even connect. With admin uids, the socket is 0666 (directory 0755) so those
 * users can reach it; then the peer-uid check is the guard. An existing directory is left as is:
 * it must be searchable by the admin uids (a warning is logged when it is not).
 * @throws ERR_CONFIG_INVALID when the socket cannot be bound
 */
export async function startAdminApi(ctx: ServerContext, options: AdminApiOptions = {}): Promise<AdminApi> {
  const log = ctx.log.child({ component: 'admin-api' })
  const serverUid = options.serverUid ?? process.getuid?.() ?? 0
  const allowed = new Set([serverUid, ...ctx.settings.adminUids])
  const isShared = ctx.settings.adminUids.length > 0
  const holder: { server?: UdsServer<AdminPeer> } = {}
  const audit = new SummarisingAuditLog(ctx.audit, {
    clock: ctx.clock,
    windowMs: ctx.settings.auditSummaryWindowMs,
  })
  const peerOf = (call: { getPeer(): string }) => holder.server?.peerOf(call)
  const server = new UdsServer<AdminPeer>({
    path: ctx.settings.adminSocket,
    dirMode: isShared ? 0o755 : 0o700,
    socketMode: isShared ? 0o666 : 0o600,
    admit: async (_socket, creds) => ({ uid: creds.uid, pid: creds.pid, isAdmin: allowed.has(creds.uid) }),
    uidPolicy: adminUidPolicy(allowed, options.maxConnectionsPerUid, audit),
    idleTimeoutMs: ADMIN_IDLE_TIMEOUT_MS,
    maxMessageBytes: options.maxMessageBytes ?? ADMIN_MAX_MESSAGE_BYTES,
    interceptors: [refuseNonAdmins(peerOf, audit)],
    log,
  })
  holder.server = server
  addAdminServices(server.grpc, ctx, { log, callerOf: (call) => callerOf(peerOf(call)) })
  if (ctx.health !== undefined)
    server.grpc.addService(healthApi().grpc.health.v1.Health.service, serverHealthHandlers(ctx.health, []))
  await server.listen()
  if (isShared) await warnIfUnreachable(ctx.settings.adminSocket, log)
  log.info({ socket: ctx.settings.adminSocket, adminUids: [...allowed] }, 'Admin API listening.')
  return { close: () => server.close().finally(() => audit.close()) }
}

/**
 * Non-admin uids are dropped at accept, before any byte is read, so no number of their connections
 * can lock the admin out; each admin uid has its own cap. Refusals are audited, summarised.
 */
function adminUidPolicy(
  allowed: ReadonlySet<number>,
  perUid: number | undefined,
  audit: AuditLog,
): UidConnectionPolicy {
  const cap = perUid ?? ADMIN_CONNECTIONS_PER_UID
  return {
    capFor: (uid) => (allowed.has(uid) ? cap : 0),
    onRefused: ({ code, reason, creds }) =>
      audit.callDenied({
        method: 'connect',
        code,
        reason,
        caller: { kind: 'admin', uid: creds.uid, pid: creds.pid },
      }),
  }
}

/**
 * Adds the admin API's services to `server`; `kit.callerOf` says who may call (the admin
 * socket's peer-uid check, or remote admin's per-call entry lookup).
 */
export function addAdminServices(server: Server, ctx: ServerContext, kit: HandlerKit): void {
  const { trustDomain, audit, events, datastore } = ctx
  const { auditJournal } = ctx
  const entries = new EntryService({
    trustDomain,
    store: datastore.entries,
    audit,
    auditJournal,
    events,
    ttlFloors: ctx.settings,
    revokeIssued: (entry, caller) => revokeEntry(ctx.revocations, entry, caller, 'entry deleted'),
  })
  const tokens = new JoinTokenService({
    trustDomain,
    tokens: datastore.joinTokens,
    entries,
    audit,
    auditJournal,
    clock: ctx.clock,
    defaultTtlMs: ctx.settings.joinTokenTtlMs,
  })
  const agents = new AgentAdminService({ agents: datastore.agents, audit, auditJournal, events })
  const api = adminApi().tessera.admin.v1
  server.addService(api.Entries.service, createEntriesHandlers({ ...kit, entries, audit }))
  server.addService(api.JoinTokens.service, createJoinTokenHandlers({ ...kit, tokens, audit }))
  server.addService(api.Agents.service, createAgentHandlers({ ...kit, agents }))
  server.addService(
    api.Revocations.service,
    createRevocationHandlers({ ...kit, revocations: ctx.revocations, entries }),
  )
  server.addService(
    api.Bundles.service,
    createBundleHandlers({ ...kit, bundles: ctx.bundles, audit, auditJournal }),
  )
  const approvals = new ApprovalService({
    store: datastore.pendingRequests,
    entries,
    trustDomain,
    clock: ctx.clock,
    audit,
    settings: ctx.settings,
    drops: ctx.pendingDrops ?? { count: 0, isAudited: false },
    taskWaiters: ctx.taskWaiters,
    tasks: ctx.tasks,
  })
  const { pendingTtlMs } = ctx.settings
  server.addService(
    api.Approvals.service,
    createApprovalHandlers({ ...kit, approvals, clock: ctx.clock, pendingTtlMs }),
  )
  const checkpoints = new CheckpointService({
    store: datastore.checkpoints,
    bundles: ctx.bundles,
    clock: ctx.clock,
    audit,
  })
  server.addService(api.AuditCheckpoints.service, createCheckpointHandlers({ ...kit, checkpoints }))
}

function callerOf(peer: AdminPeer | undefined): AuditCaller {
  if (peer === undefined || !peer.isAdmin)
    throw new IdentityError('ERR_PEER_UNAUTHORIZED', 'the connection was not admitted as an admin')
  return { kind: 'admin', uid: peer.uid, pid: peer.pid }
}

/**
 * Refuses every call from a peer that is not an admin, before its request is read, and audits it.
 * Runs after UdsServer's own check that the connection was admitted at all.
 */
function refuseNonAdmins(
  peerOf: (call: { getPeer(): string }) => AdminPeer | undefined,
  audit: AuditLog,
): ServerInterceptor {
  return (method, call) =>
    new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, forward) => {
            const peer = peerOf(call)
            if (peer?.isAdmin === true) return forward(metadata)
            const caller: AuditCaller =
              peer === undefined
                ? { kind: 'remote', address: call.getPeer() }
                : { kind: 'admin', uid: peer.uid, pid: peer.pid }
            const reason = `uid ${peer?.uid ?? 'unknown'} is not an admin uid`
            audit.callDenied({ method: method.path, code: 'ERR_PEER_UNAUTHORIZED', reason, caller })
            const refusal = new IdentityError('ERR_PEER_UNAUTHORIZED', 'this uid may not use the admin API')
            const { code, details, metadata: trailers } = toServiceError(refusal)
            call.sendStatus({
              code: code ?? status.PERMISSION_DENIED,
              details: details ?? '',
              metadata: trailers ?? null,
            })
          },
        }),
    })
}

/** Warns when other users cannot search the socket's directory, so `--admin-uid` would not work. */
async function warnIfUnreachable(socket: string, log: Logger): Promise<void> {
  const dir = dirname(socket)
  const mode = (await stat(dir)).mode
  if ((mode & 0o001) === 0)
    log.warn(
      { dir, mode: (mode & 0o777).toString(8) },
      'Admin uids are configured but the admin socket directory is not searchable by other users.',
    )
}
