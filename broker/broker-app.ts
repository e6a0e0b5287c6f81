import { readFileSync } from 'node:fs'
import { Agent } from 'node:https'
import type { Logger } from 'pino'
import { PinoGatewayAudit } from '../common/guard/pino-guard-audit.js'
import { openRevocations } from '../common/guard/revocation-feed.js'
import { localPeerKey } from '../common/peercred/sock-diag.js'
import { systemClock } from '../lib/core/clock.js'
import { ConfigError } from '../lib/core/config-error.js'
import { type IdentityError, isIdentityError } from '../lib/core/errors.js'
import { createGuard, type GuardOptions } from '../lib/guard/guard.js'
import { Policy } from '../lib/guard/policy.js'
import { FailureThrottle } from '../lib/guard/throttle.js'
import { BundleSource } from '../lib/workload/bundle-source.js'
import type { RevocationSource } from '../lib/workload/revocation-source.js'
import { WitSource } from '../lib/workload/wit-source.js'
import { X509Source } from '../lib/workload/x509-source.js'
import type { BrokerConfig } from './broker-config.js'
import { redactingLog } from './broker-log.js'
import { type BrokerRoutes, readRoutes } from './broker-routes.js'
import { startBrokerServer } from './broker-server.js'
import { readSecretsFile } from './secrets-file.js'

/** A broker serving. */
export interface RunningBroker {
  /** `host:port`. */
  readonly listen: string
  readonly routes: number
  readonly egressRules: number
  close(): Promise<void>
}

/**
 * The routes file compiled with its secrets (the secrets file, then the environment); each is
 * read once, at start, and every problem of both reported together.
 * @throws ERR_SECRETS_FILE_INSECURE; ConfigError (ERR_CONFIG_INVALID) with every problem
 */
export function loadRoutes(
  config: BrokerConfig,
  env: Readonly<Record<string, string | undefined>>,
): BrokerRoutes {
  const file = config.secretsPath === undefined ? undefined : readSecretsFile(config.secretsPath)
  return readRoutes(config.routesPath, { file, env })
}

function readCa(path: string | undefined): Buffer | undefined {
  if (path === undefined) return undefined
  try {
    return readFileSync(path)
  } catch (err) {
    throw new ConfigError([`upstreamCa ${path}: cannot be read (${(err as NodeJS.ErrnoException).code})`])
  }
}

async function openWits(config: BrokerConfig, log: Logger): Promise<WitSource | undefined> {
  const onError = (err: IdentityError) =>
    log.warn({ code: err.code, err }, 'WIT bundle stream failed; retrying.')
  try {
    return await WitSource.create({ endpoint: config.endpoint, onError, svids: false })
  } catch (err) {
    if (config.requireProof || !isIdentityError(err, 'ERR_UNIMPLEMENTED')) throw err
    return undefined
  }
}

/**
 * Starts `tessera broker` from a loaded config: the secrets and routes (refused at start when
 * anything is wrong), the agent's bundles and revocations, one guard per route sharing one
 * throttle and audit log, and the listener. Everything opened is closed again if a step fails.
 */
export async function startBroker(
  config: BrokerConfig,
  log: Logger,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<RunningBroker> {
  const { routes, egress } = loadRoutes(config, env)
  log = redactingLog(log, routes)
  const ca = readCa(config.upstreamCaPath)
  const audit = PinoGatewayAudit.open(config.auditLogPath, {
    checkpoints: { everyLines: config.auditCheckpointLines, everyMs: config.auditCheckpointIntervalMs },
  })
  const onError = (err: IdentityError) =>
    log.warn({ code: err.code, err }, 'Workload API stream failed; retrying.')
  let bundles: BundleSource | undefined
  let revocations: RevocationSource | undefined
  let wits: WitSource | undefined
  let svids: X509Source | undefined
  const closeSources = () => {
    audit.close()
    svids?.close()
    wits?.close()
    revocations?.close()
    bundles?.close()
  }
  try {
    bundles = await BundleSource.create({ endpoint: config.endpoint, onError })
    revocations = await openRevocations(config.endpoint, log, onError)
    wits = await openWits(config, log)
    if (config.tls) svids = await X509Source.create({ endpoint: config.endpoint, onError })
    const throttle = new FailureThrottle({
      maxFailures: config.throttleFailures,
      baseDelayMs: config.throttleDelayMs,
      maxDelayMs: config.throttleMaxDelayMs,
    })
    const base: Omit<GuardOptions, 'policy'> = {
      jwtBundles: bundles,
      x509Bundles: bundles,
      ...(revocations !== undefined && { revocations }),
      ...(wits !== undefined && {
        proof: { witBundles: wits, required: config.requireProof, scheme: 'http' },
      }),
      audience: config.audience,
      allowedHosts: config.allowedHosts,
      throttle,
      peerKey: (request) => localPeerKey(request.socket),
      audit,
    }
    const upstreamAgent = new Agent({ keepAlive: true, maxSockets: 256, ...(ca !== undefined && { ca }) })
    const server = await startBrokerServer({
      listen: config.listen,
      routes: routes.map((route) => ({ route, guard: createGuard({ ...base, policy: route.policy }) })),
      screen: createGuard({ ...base, policy: Policy.fromJson({ rules: [], default: 'deny' }) }),
      routeContext: {
        agent: upstreamAgent,
        responseTimeoutMs: config.upstreamTimeoutMs,
        maxResponseBytes: config.maxResponseBytes,
        log: log.child({ component: 'broker.route' }),
        audit,
      },
      egress: {
        rules: egress,
        auth: {
          jwtBundles: bundles,
          x509Bundles: bundles,
          audience: config.audience,
          revocations,
          clock: systemClock,
        },
        throttle,
        audit,
        log: log.child({ component: 'broker.egress' }),
        connectTimeoutMs: config.upstreamTimeoutMs,
      },
      upstreamAgent,
      audit,
      log,
      ...(svids !== undefined && { tlsSource: svids }),
    }).catch((err: unknown) => {
      upstreamAgent.destroy()
      throw err
    })
    const { host, port } = server.address
    return {
      listen: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`,
      routes: routes.length,
      egressRules: egress.length,
      close: async () => {
        await server.close()
        closeSources()
      },
    }
  } catch (err) {
    closeSources()
    throw err
  }
}
