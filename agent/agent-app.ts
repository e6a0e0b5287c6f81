import { chmod, mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'
import type { CheckpointListener } from '../common/log/audit-chain-writer.js'
import type { AuditLog } from '../common/log/audit-log.js'
import { CheckpointForwarder } from '../common/log/checkpoint-forwarder.js'
import { requirePeercredAddon } from '../common/peercred/peercred.js'
import { type Clock, systemClock } from '../lib/core/clock.js'
import { IdentityError } from '../lib/core/errors.js'
import { generateP256PrivateKey } from '../lib/core/x509/generate-key.js'
import type { X509Svid } from '../lib/core/x509/x509-svid.js'
import { errorCodeOf } from '../lib/grpc/status.js'
import type { AgentConfig } from './agent-config.js'
import { UnixAttestor } from './attest/unix/unix-attestor.js'
import { PendingWorkloads } from './consent/pending-workloads.js'
import { AgentCache } from './manager/agent-cache.js'
import { ServerClient, type SyncSnapshot } from './server-client/server-client.js'
import { signingServerOf } from './server-signing.js'
import { AgentStateStore } from './state/agent-state.js'
import { AgentIdentityKeeper } from './state/identity-keeper.js'
import { AgentTasks, TASK_JOURNAL_FILE } from './tasks/agent-tasks.js'
import { startWorkloadApi, type WorkloadServer } from './workload-api/workload-server.js'

/** How often SVID rotation and agent SVID renewal are checked. */
export const ROTATION_CHECK_MS = 1000
/** Mode of a data directory the agent creates (see `prepareAgentDataDir`). */
export const DATA_DIR_MODE = 0o711
/** How long a first stream answer may wait for SVIDs being signed. */
export const FIRST_RESPONSE_WAIT_MS = 5000

/** Side effects the caller provides. */
export interface AgentDeps {
  readonly log: Logger
  readonly audit: AuditLog
  readonly clock?: Clock
  /** Called when the server refuses this agent for good (evicted or banned). */
  readonly onRefused?: (err: unknown) => void
}

/** A running agent. */
export interface RunningAgent {
  readonly cache: AgentCache
  /** The agent's own X509-SVID now: it signs the audit checkpoints. */
  svid(): X509Svid | undefined
  /** Give to the agent's audit log: each checkpoint it signs is sent to the server (DESIGN §10). */
  readonly checkpointListener: CheckpointListener
  stop(): Promise<void>
}

/**
 * Starts an agent: its identity (persisted SVID, or a join-token attestation), the sync stream of
 * authorized entries and bundles, the SVID cache with rotation, and the Workload API on its socket.
 */
export async function startAgent(config: AgentConfig, deps: AgentDeps): Promise<RunningAgent> {
  requirePeercredAddon()
  const clock = deps.clock ?? systemClock
  const log = deps.log.child({ component: 'agent' })
  await prepareAgentDataDir(config.dataDir)
  if (config.insecureBootstrap)
    log.warn(
      {},
      'Insecure bootstrap: the first server reached is trusted without verification. Development only.',
    )
  const client = new ServerClient({
    address: config.serverAddress,
    trustDomain: config.trustDomain,
    trustBundlePem: config.trustBundlePath ? await readTrustBundle(config.trustBundlePath) : undefined,
    insecureBootstrap: config.insecureBootstrap,
    log: deps.log.child({ component: 'agent.server-client' }),
    clock,
  })
  const keeper = new AgentIdentityKeeper({
    client,
    store: new AgentStateStore(config.dataDir, config.trustDomain),
    clock,
    log,
  })
  const cleanup: Array<() => Promise<void> | void> = [() => client.close()]
  try {
    await keeper.establish(config.joinToken)
    const cache = new AgentCache({
      clock,
      server: signingServerOf(client),
      generateKey: generateP256PrivateKey,
      onError: (err, entryId) => log.warn({ err, entryId }, 'Workload SVID signing failed; will retry.'),
    })
    const firstSync = syncInto(client, cache, keeper, log, deps.onRefused)
    cleanup.push(() => firstSync.stream.stop())
    const forwarder = new CheckpointForwarder({
      send: ({ note, x5c }) => client.reportCheckpoint(note, x5c),
      onError: (err) =>
        log.warn({ err, code: errorCodeOf(err) }, 'Sending an audit checkpoint to the server failed.'),
    })
    cleanup.push(() => forwarder.close())
    const pending = new PendingWorkloads({
      reporter: client,
      clock,
      audit: deps.audit,
      log: log.child({ component: 'agent.pending' }),
    })
    cleanup.push(() => pending.close())
    const attestor = new UnixAttestor({ hashSizeLimitBytes: config.hashSizeLimitBytes }, { clock, log })
    cleanup.push(() => attestor.close())
    const tasks = new AgentTasks({
      server: client,
      clock,
      log: log.child({ component: 'agent.tasks' }),
      journalPath: join(config.dataDir, TASK_JOURNAL_FILE),
    })
    cleanup.push(() => tasks.close())
    // Tasks begun before a restart: their processes watched again, or the tasks ended and revoked.
    await tasks.restore()
    const workload: WorkloadServer = await startWorkloadApi(
      {
        socketPath: config.socketPath,
        log: deps.log.child({ component: 'agent.workload-api' }),
        maxConnectionsPerUid: config.maxConnectionsPerUid,
        idleTimeoutMs: config.connectionIdleTimeoutMs,
        auditSummaryWindowMs: config.auditSummaryWindowMs,
        bindingChecks: !config.unsafeBenchNoBindingChecks,
        beginTaskThrottle: { burst: 4 * config.beginTaskPerSecond, perSecond: config.beginTaskPerSecond },
      },
      {
        identities: cache,
        attestor,
        clock,
        audit: deps.audit,
        log,
        allowUnauthenticatedVerifiers: config.allowUnauthenticatedVerifiers,
        firstResponseWaitMs: FIRST_RESPONSE_WAIT_MS,
        pending,
        checkpoints: { forward: (c) => client.reportCheckpoint(c.note, c.x5c) },
        tasks: { tasks, server: client },
      },
    )
    cleanup.push(() => workload.close())
    const timer = setInterval(() => {
      void cache.rotate().catch((err) => log.warn({ err }, 'SVID rotation failed; will retry.'))
      void keeper.renewIfDue().catch((err) => log.warn({ err }, 'Agent SVID renewal failed; will retry.'))
    }, ROTATION_CHECK_MS)
    timer.unref()
    cleanup.push(() => clearInterval(timer))
    log.info(
      { spiffeId: keeper.id?.toString(), socket: config.socketPath, server: config.serverAddress },
      'agent ready',
    )
    return {
      cache,
      svid: () => keeper.svid,
      checkpointListener: forwarder.listener,
      stop: () => runCleanup(cleanup),
    }
  } catch (err) {
    await runCleanup(cleanup)
    throw err
  }
}

function syncInto(
  client: ServerClient,
  cache: AgentCache,
  keeper: AgentIdentityKeeper,
  log: Logger,
  onRefused?: (err: unknown) => void,
) {
  const stream = client.sync({
    onSnapshot: (snapshot: SyncSnapshot) => {
      const [own, ...federated] = snapshot.bundles
      if (!own) return log.warn({}, 'Sync snapshot without the own bundle ignored.')
      void keeper.rememberBundle(own)
      void cache
        .applySnapshot(snapshot.entries, own, federated)
        .catch((err) => log.warn({ err }, 'Applying a sync snapshot failed.'))
      void cache
        .applyRevocations(snapshot.revocations)
        .catch((err) => log.warn({ err }, 'Replacing revoked SVIDs failed; will retry.'))
    },
    onRefused: (err) => {
      // One line: what the server said, not a stack (a refusal is an answer, not a crash).
      log.error(
        { code: errorCodeOf(err), details: err.details },
        'The server refused this agent (evicted or banned); it cannot renew or sign.',
      )
      onRefused?.(err)
    },
  })
  return { stream }
}

/**
 * The data directory is searchable but not listable by others (0711): the agent's key file inside
 * is 0600, while workloads of every user must reach the Workload API socket under `public/` (0755).
 */
export async function prepareAgentDataDir(dir: string): Promise<void> {
  if ((await mkdir(dir, { recursive: true, mode: DATA_DIR_MODE })) !== undefined)
    await chmod(dir, DATA_DIR_MODE)
}

async function readTrustBundle(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    throw new IdentityError('ERR_CONFIG_INVALID', `trust bundle ${path} cannot be read`, { cause: err })
  }
}

async function runCleanup(steps: Array<() => Promise<void> | void>): Promise<void> {
  while (steps.length > 0) {
    const step = steps.pop()
    try {
      await step?.()
    } catch {
      // best effort: the remaining steps still run
    }
  }
}
