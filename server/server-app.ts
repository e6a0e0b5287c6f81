import type { Logger } from 'pino'
import { PushCertificateProvider } from '../common/grpc/certificate-provider.js'
import type { AuditJournal } from '../common/log/audit-file.js'
import type { AuditLog } from '../common/log/audit-log.js'
import { requirePeercredAddon } from '../common/peercred/peercred.js'
import type { ReportedCheckpoint } from '../lib/audit/reported-checkpoint.js'
import { type Clock, systemClock } from '../lib/core/clock.js'
import { IdentityError } from '../lib/core/errors.js'
import type { SpiffeId } from '../lib/core/spiffe-id.js'
import type { X509Svid } from '../lib/core/x509/x509-svid.js'
import { type AdminApi, startAdminApi } from './admin-api/admin-api.js'
import { serveRemoteAdmin } from './admin-api/remote-admin.js'
import { type AgentApi, startAgentApi } from './agent-api/agent-api.js'
import { CheckpointService } from './audit-checkpoints/checkpoint-service.js'
import { BundleService } from './bundle/bundle-service.js'
import { CaRotator } from './ca/rotator.js'
import { TaskWaiters } from './consent/task-waiters.js'
import type { ServerContext } from './context.js'
import { watchFaults } from './datastore/fault-watch.js'
import { openSqliteDatastore } from './datastore/sqlite/datastore.js'
import { ServerEvents } from './events.js'
import { reportDatastoreFault, reportRotation } from './failure-reports.js'
import { ServerHealth } from './health/server-health.js'
import { ServerSvid } from './identity/server-svid.js'
import { startDiscoveryListener } from './oidc/discovery-listener.js'
import { RevocationService } from './revocation/revocation-service.js'
import type { ServerConfig } from './server-config.js'
import { taskServiceOf } from './tasks/task-wiring.js'

/** How often rotation, the server SVID and pruning are checked (SPIRE checks its CA every 10 s). */
export const MAINTENANCE_INTERVAL_MS = 10_000

/** A running server. */
export interface RunningServer {
  readonly context: ServerContext
  /** The agent API's TCP port (useful when the config asked for port 0). */
  readonly agentApiPort: number
  /** The OIDC discovery listener's port, when one is configured. */
  readonly oidcDiscoveryPort: number | undefined
  /** The server's own X509-SVID now (`spiffe://<td>/tessera/server`): it signs the audit checkpoints. */
  svid(): X509Svid | undefined
  /**
   * Stores one of the server's own audit checkpoints with the agents' (DESIGN §10), verified the same way.
   * @throws as {@link CheckpointService.report}
   */
  reportCheckpoint(reported: ReportedCheckpoint): Promise<void>
  stop(): Promise<void>
}

/** Side effects the caller provides. */
export interface ServerDeps {
  readonly log: Logger
  readonly audit: AuditLog
  /** The audit file under `audit` (`PinoAuditLog.journal`), so changes are audited durably before they commit. */
  readonly auditJournal?: AuditJournal | undefined
  readonly clock?: Clock
}

/** How to start (one-off choices of the operator, not settings). */
export interface StartOptions {
  /** Create a new CA when the key journal is missing or unreadable, instead of refusing (`--new-ca`). */
  readonly newCa?: boolean
}

/**
 * Starts a trust-domain server from a loaded config: the datastore, the CA and its rotation, the
 * bundle, the server's own SVID, the admin API on its Unix socket and the agent API over TLS.
 * Everything started is stopped again if a later step fails.
 * @throws ERR_DATASTORE_CORRUPT, ERR_KEY_STORE_CORRUPT (refused: never taken for a fresh install)
 * @throws ERR_ADDON_UNAVAILABLE when the peer-credential addon is not built
 */
export async function startServer(
  config: ServerConfig,
  deps: ServerDeps,
  options: StartOptions = {},
): Promise<RunningServer> {
  requirePeercredAddon()
  const clock = deps.clock ?? systemClock
  const log = deps.log.child({ component: 'server' })
  const trustDomain = config.trustDomain
  const events = new ServerEvents()
  const health = new ServerHealth()
  const opened = await openSqliteDatastore({ path: config.dbPath, trustDomain, clock })
  const datastore = watchFaults(opened, (err) => reportDatastoreFault(err, { log, health }))
  const stack: Array<() => Promise<void>> = [() => datastore.close()]
  try {
    const rotator = new CaRotator({
      trustDomain,
      clock,
      journal: datastore.keyJournal,
      caTtlMs: config.caTtlMs,
      onEvent: (e) => reportRotation(e, { log, audit: deps.audit, trustDomain: trustDomain.name }),
    })
    await rotator.start({ isFresh: datastore.isNew, replaceBroken: options.newCa === true })
    const bundles = new BundleService({ trustDomain, store: datastore.bundles, events, keys: rotator })
    await bundles.start()
    stack.push(() => bundles.stop())
    const revocations = new RevocationService({
      store: datastore.revocations,
      audit: deps.audit,
      auditJournal: deps.auditJournal,
      events,
      clock,
      trustDomain,
      latestExpiryMs: () => {
        const active = rotator.active()
        return Math.max(active.x509Ca.notAfterMs, active.jwtKey.notAfterMs)
      },
    })
    await revocations.start()
    const base: ServerContext = {
      settings: config,
      trustDomain,
      clock,
      log: deps.log,
      audit: deps.audit,
      auditJournal: deps.auditJournal,
      datastore,
      rotator,
      bundles,
      events,
      revocations,
      health,
      pendingDrops: { count: 0, isAudited: false },
      taskWaiters: new TaskWaiters(),
    }
    const context: ServerContext = { ...base, tasks: taskServiceOf(base) }
    if ((config.taskAudiences ?? []).length === 0)
      log.warn(
        { setting: 'taskAudiences' },
        'No task audience is configured: task tokens may name any audience (set --task-audience).',
      )

    const tls = new PushCertificateProvider()
    const serverSvid = new ServerSvid({
      trustDomain,
      clock,
      activeCa: () => rotator.active().x509Ca,
      bundlePem: () => bundles.own().toX509Bundle().marshalPem(),
      ttlMs: config.agentSvidTtlMs,
      provider: tls,
    })
    await serverSvid.refresh()
    const unsubscribe = events.on(
      'bundle-changed',
      () => void serverSvid.refresh().catch((err) => log.error({ err }, 'server SVID refresh failed')),
    )
    stack.push(async () => unsubscribe())

    const adminApi: AdminApi = await startAdminApi(context)
    stack.push(() => adminApi.close())
    const agentApi: AgentApi = await startAgentApi(context, tls, (grpc) => serveRemoteAdmin(grpc, context))
    stack.push(() => agentApi.close())

    const oidc = await startOidcDiscovery(config, context)
    if (oidc) stack.push(() => oidc.close())

    const timer = setInterval(() => void maintain(context, serverSvid), MAINTENANCE_INTERVAL_MS)
    timer.unref()
    stack.push(async () => clearInterval(timer))
    log.info(
      {
        trustDomain: trustDomain.name,
        adminSocket: config.adminSocket,
        agentApi: `${config.bindAddress}:${agentApi.port}`,
        ...(oidc ? { oidcDiscovery: oidc.url, jwtIssuer: config.jwtIssuer } : {}),
      },
      'server ready',
    )
    const checkpoints = new CheckpointService({
      store: datastore.checkpoints,
      bundles,
      clock,
      audit: deps.audit,
    })
    const caller = { kind: 'system', component: 'audit' } as const
    return {
      context,
      agentApiPort: agentApi.port,
      oidcDiscoveryPort: oidc?.port,
      svid: () => serverSvid.current,
      reportCheckpoint: async (reported) => {
        const id = serverSvid.current?.id
        if (id === undefined) throw new IdentityError('ERR_CA_NOT_READY', 'the server has no SVID yet')
        const mayReportFor = async (origin: SpiffeId) => origin.equals(id)
        await checkpoints.report(reported, { id, caller, mayReportFor }, 'audit.checkpoint')
      },
      stop: () => unwind(stack),
    }
  } catch (err) {
    await unwind(stack)
    throw err
  }
}

/** The OIDC discovery listener (DESIGN §12), when `oidcDiscoveryPort` is set: it serves the live JWT bundle. */
async function startOidcDiscovery(config: ServerConfig, ctx: ServerContext) {
  if (config.oidcDiscoveryPort === undefined || config.jwtIssuer === undefined) return undefined
  const { oidcTlsCertPath: certPath, oidcTlsKeyPath: keyPath } = config
  return startDiscoveryListener({
    issuer: config.jwtIssuer,
    address: config.oidcDiscoveryAddress,
    port: config.oidcDiscoveryPort,
    tls: certPath !== undefined && keyPath !== undefined ? { certPath, keyPath } : undefined,
    jwtBundle: () => ctx.bundles.own().toJwtBundle(),
    log: ctx.log.child({ component: 'server.oidc-discovery' }),
  })
}

/** One maintenance pass: CA rotation, the server SVID, and pruning of expired tokens, entries and revocations. */
async function maintain(ctx: ServerContext, serverSvid: ServerSvid): Promise<void> {
  try {
    await ctx.rotator.rotate()
    await serverSvid.refresh()
    const nowMs = ctx.clock.nowMs()
    await ctx.datastore.joinTokens.prune(nowMs)
    if ((await ctx.datastore.entries.prune(nowMs)) > 0) ctx.events.emit('entries-changed')
    await ctx.revocations.prune()
    await ctx.tasks?.prune()
  } catch (err) {
    ctx.log.error({ err, component: 'server.maintenance' }, 'maintenance pass failed')
  }
}

async function unwind(stack: Array<() => Promise<void>>): Promise<void> {
  while (stack.length > 0) {
    const step = stack.pop()
    await step?.().catch(() => undefined)
  }
}
