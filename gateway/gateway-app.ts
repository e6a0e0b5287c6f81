import type { Logger } from 'pino'
import { connectCheckpointClient } from '../common/grpc/checkpoint-client.js'
import { PinoGatewayAudit } from '../common/guard/pino-guard-audit.js'
import { openRevocations } from '../common/guard/revocation-feed.js'
import { CheckpointForwarder } from '../common/log/checkpoint-forwarder.js'
import { localPeerKey } from '../common/peercred/sock-diag.js'
import { IdentityError } from '../lib/core/errors.js'
import type { X509Svid } from '../lib/core/x509/x509-svid.js'
import { errorCodeOf } from '../lib/grpc/status.js'
import { createGuard, type GatewayAudit } from '../lib/guard/guard.js'
import { Policy } from '../lib/guard/policy.js'
import { FailureThrottle } from '../lib/guard/throttle.js'
import { BundleSource } from '../lib/workload/bundle-source.js'
import type { RevocationSource } from '../lib/workload/revocation-source.js'
import type { WitSource } from '../lib/workload/wit-source.js'
import { X509Source } from '../lib/workload/x509-source.js'
import type { GatewayConfig } from './gateway-config.js'
import { openWitBundles, proofOptions } from './gateway-proof.js'
import { startGatewayServer } from './gateway-server.js'

/** A gateway serving: where it listens, which SVID it presents (with TLS), and how to stop it. */
export interface RunningGateway {
  /** `host:port` (IPv6 hosts in brackets). */
  readonly listen: string
  readonly spiffeId: string | undefined
  close(): Promise<void>
}

/** The agent's bundles and, with TLS, the gateway's own SVID; both kept current by the agent's streams. */
async function openSources(config: GatewayConfig, log: Logger) {
  const onError = (err: IdentityError) =>
    log.warn({ code: err.code, err }, 'Workload API stream failed; retrying.')
  const bundles = await BundleSource.create({ endpoint: config.endpoint, onError })
  let revocations: RevocationSource | undefined
  try {
    revocations = await openRevocations(config.endpoint, log, onError)
    const svids = config.tls ? await openOwnSvid(config, onError) : undefined
    const wits = await openWitBundles(config, log).catch((err: unknown) => {
      svids?.close()
      throw err
    })
    return { bundles, svids, wits, revocations }
  } catch (err) {
    revocations?.close()
    bundles.close()
    throw err
  }
}

/**
 * The gateway's own SVID: the one `--spiffe-id` names, else the default (first) one.
 * @throws ERR_NO_IDENTITY when the workload has no SVID with that ID
 */
async function openOwnSvid(
  config: GatewayConfig,
  onError: (err: IdentityError) => void,
): Promise<X509Source> {
  const wanted = config.spiffeId
  const picker = wanted && ((svids: ReadonlyArray<X509Svid>) => svids.find((s) => s.id.equals(wanted)))
  const source = await X509Source.create({ endpoint: config.endpoint, onError, ...(picker && { picker }) })
  if (wanted === undefined) return source
  const ids = source.getX509Context().svids.map((s) => s.id.toString())
  if (!ids.includes(wanted.toString())) {
    source.close()
    throw new IdentityError(
      'ERR_NO_IDENTITY',
      `this process has no X509-SVID for ${wanted} (it has ${ids.join(', ') || 'none'}): register an entry for it, or give one of those to --spiffe-id`,
    )
  }
  return source
}

function buildGuard(
  config: GatewayConfig,
  deps: {
    policy?: Policy
    bundles: BundleSource
    revocations?: RevocationSource
    audit: GatewayAudit
    wits: WitSource | undefined
  },
) {
  const { policy, bundles, revocations, audit } = deps
  const proof = proofOptions(config, deps.wits)
  return createGuard({
    ...(proof !== undefined && { proof }),
    jwtBundles: bundles,
    x509Bundles: bundles,
    ...(revocations !== undefined && { revocations }),
    audience: config.audience,
    ...(policy !== undefined && { policy }),
    allowedOrigins: config.allowedOrigins,
    allowedHosts: config.allowedHosts,
    throttle: new FailureThrottle({
      maxFailures: config.throttleFailures,
      baseDelayMs: config.throttleDelayMs,
      maxDelayMs: config.throttleMaxDelayMs,
    }),
    // Before authentication, a loopback peer is its uid (NETLINK_SOCK_DIAG), never its address.
    peerKey: (request) => localPeerKey(request.socket),
    audit,
  })
}

/**
 * Starts `tessera gateway` from a loaded config: the agent's sources, the guard, the audit log and
 * the proxy. Everything it opened is closed again if a later step fails.
 * @throws IdentityError from the policy file, the Workload API or the listener
 */
export async function startGateway(config: GatewayConfig, log: Logger): Promise<RunningGateway> {
  const policy = config.policyPath === undefined ? undefined : Policy.read(config.policyPath)
  const audit = PinoGatewayAudit.open(config.auditLogPath, {
    onMovedAside: (aside: string) =>
      log.warn(
        { aside, path: config.auditLogPath },
        'The audit log predates the hash chain; it was moved aside and a new chain starts.',
      ),
    checkpoints: { everyLines: config.auditCheckpointLines, everyMs: config.auditCheckpointIntervalMs },
  })
  const { bundles, svids, wits, revocations } = await openSources(config, log)
  // Its checkpoints go to the server through the agent, so a cut or deleted file shows (DESIGN §10).
  const checkpointClient = connectCheckpointClient(config.endpoint)
  const forwarder = new CheckpointForwarder({
    send: (checkpoint) => checkpointClient.report(checkpoint),
    onError: (err) =>
      log.warn({ err, code: errorCodeOf(err) }, 'Sending an audit checkpoint to the agent failed.'),
  })
  if (svids !== undefined) {
    audit.setCheckpointSigner(() => svids.getX509Svid())
    audit.onCheckpoint(forwarder.listener)
  }
  const closeSources = () => {
    // The audit log first: its last checkpoint is signed with the SVID the source still holds.
    audit.close()
    forwarder.close()
    checkpointClient.close()
    svids?.close()
    wits?.close()
    revocations?.close()
    bundles.close()
  }
  try {
    const server = await startGatewayServer({
      listen: config.listen,
      upstream: config.upstream,
      guard: buildGuard(config, {
        ...(policy !== undefined && { policy }),
        ...(revocations !== undefined && { revocations }),
        bundles,
        audit,
        wits,
      }),
      readsTools: policy?.usesTools ?? false,
      readsMcpMethods: policy?.usesMcpMethods ?? false,
      responseTimeoutMs: config.upstreamTimeoutMs,
      log: log.child({ component: 'gateway.proxy' }),
      ...(svids !== undefined && { tlsSource: svids }),
    })
    const { host, port } = server.address
    return {
      listen: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`,
      spiffeId: svids?.getX509Svid().id.toString(),
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
