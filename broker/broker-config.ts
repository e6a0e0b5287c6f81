import { isIP } from 'node:net'
import {
  booleanKind,
  durationKind,
  enumKind,
  hostKind,
  integerKind,
  type Kind,
  listKind,
  pathKind,
  stringKind,
} from '../common/config/config-fields.js'
import {
  ConfigError,
  type ConfigInput,
  type LoadedConfig,
  loadConfig,
  type Schema,
} from '../common/config/config-source.js'
import { loadWorkloadCliConfig } from '../common/config/workload-endpoint.js'
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from '../common/log/logger.js'
import { IdentityError } from '../lib/core/errors.js'
import { normalizeAllowedHost } from '../lib/guard/host-origin.js'
import type { WorkloadEndpoint } from '../lib/workload/endpoint.js'

/** Where the broker listens. Port 0 picks a free port. */
export interface ListenAddress {
  readonly host: string
  readonly port: number
}

/** The settings of `tessera broker`; each is a file key, a `TESSERA_BROKER_*` var and a flag. */
export interface BrokerSettings {
  /** `host:port` to listen on (`--listen`); port 0 picks a free one (logged at start). */
  readonly listen: ListenAddress
  /** The routes file (`--routes`): routes with their credentials and policies, and the egress allowlist. */
  readonly routesPath: string
  /** The secrets file (`--secrets`): mode 0600/0400, owned by the broker's user. */
  readonly secretsPath: string | undefined
  /** Bearer JWT-SVIDs and task tokens must carry one of these audiences (`--audience`). */
  readonly audience: readonly string[]
  /** PEM CA certificates upstream TLS is verified with instead of the system's (`--upstream-ca`). */
  readonly upstreamCaPath: string | undefined
  /** Names the Host header may carry (`--host`); default the listen host, plus `localhost` on loopback. */
  readonly allowedHosts: readonly string[]
  /** Serve HTTPS with the broker's own X509-SVID and accept client SVIDs on routes (mTLS) (`--tls`). */
  readonly tls: boolean
  /** Refuse bearer JWT-SVIDs on routes: WIT + WPT only (`--require-proof`). */
  readonly requireProof: boolean
  /** How long an upstream may take to answer with headers (`--upstream-timeout`, default 30s). */
  readonly upstreamTimeoutMs: number
  /** The largest upstream answer body passed on (`--max-response-bytes`, default 64 MiB). */
  readonly maxResponseBytes: number
  readonly throttleFailures: number
  readonly throttleDelayMs: number
  readonly throttleMaxDelayMs: number
  readonly logLevel: LogLevel
  readonly logFormat: LogFormat
  /** Audit log file, or `-` for standard output (the default). */
  readonly auditLogPath: string
  readonly auditCheckpointLines: number
  readonly auditCheckpointIntervalMs: number
}

/** The broker's validated, deep-frozen configuration. */
export interface BrokerConfig extends BrokerSettings {
  /** The Workload API: `--socket`, else `SPIFFE_ENDPOINT_SOCKET`, else the default agent socket. */
  readonly endpoint: WorkloadEndpoint
  readonly warnings: readonly string[]
  readonly configFile: string | undefined
}

export const BROKER_ENV_PREFIX = 'TESSERA_BROKER_'

function invalid(message: string): IdentityError {
  return new IdentityError('ERR_CONFIG_INVALID', message)
}

function listenKind(): Kind<ListenAddress> {
  const host = hostKind()
  return (value, ctx) => {
    const text = typeof value === 'string' ? value : ''
    const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(text)
    const port = Number(match?.[3])
    if (match === null || port > 65_535) throw invalid('must be host:port or [ipv6]:port (port 0 picks one)')
    const name = match[1] ?? match[2] ?? ''
    if (match[1] !== undefined && isIP(name) !== 6) throw invalid('must put only an IPv6 address in brackets')
    return { host: host(name, ctx), port }
  }
}

const allowedHostKind: Kind<string> = (value) => normalizeAllowedHost(typeof value === 'string' ? value : '')
const WILDCARD_HOSTS: ReadonlySet<string> = new Set(['0.0.0.0', '::'])

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.')
}

function defaultHosts(c: Partial<BrokerSettings>): readonly string[] | undefined {
  const host = c.listen?.host
  if (host === undefined || WILDCARD_HOSTS.has(host)) return undefined
  return isLoopback(host) && host !== 'localhost' ? [host, 'localhost'] : [host]
}

const BROKER_SCHEMA: Schema<BrokerSettings> = {
  listen: { kind: listenKind() },
  routesPath: { kind: pathKind(), name: 'routes' },
  secretsPath: { kind: pathKind(), name: 'secrets', isOptional: true },
  audience: { kind: listKind(stringKind({ pattern: /^\S+$/, hint: 'an audience without spaces' })) },
  upstreamCaPath: { kind: pathKind(), name: 'upstreamCa', isOptional: true },
  allowedHosts: { kind: listKind(allowedHostKind), flag: 'host', default: defaultHosts },
  tls: { kind: booleanKind(), default: false },
  requireProof: { kind: booleanKind(), default: false },
  upstreamTimeoutMs: { kind: durationKind(), name: 'upstreamTimeout', default: '30s' },
  maxResponseBytes: { kind: integerKind({ min: 1, max: 2 ** 40 }), default: 64 * 1024 * 1024 },
  throttleFailures: { kind: integerKind({ min: 1, max: 1000 }), default: 5 },
  throttleDelayMs: { kind: durationKind(), name: 'throttleDelay', default: '1s' },
  throttleMaxDelayMs: { kind: durationKind(), name: 'throttleMaxDelay', default: '5m' },
  logLevel: { kind: enumKind(LOG_LEVELS), default: 'info' },
  logFormat: { kind: enumKind(LOG_FORMATS), default: 'json' },
  auditLogPath: { kind: pathKind({ allowStdout: true }), default: '-' },
  auditCheckpointLines: { kind: integerKind({ min: 1, max: 1_000_000 }), default: 1000 },
  auditCheckpointIntervalMs: { kind: durationKind(), name: 'auditCheckpointInterval', default: '60s' },
}

function checkBrokerSettings(c: Partial<BrokerSettings>) {
  const problems: string[] = []
  const warnings: string[] = []
  if (c.audience?.length === 0) problems.push('audience: needs at least one audience')
  if (c.allowedHosts?.length === 0) problems.push('allowedHosts: needs at least one name')
  if (c.allowedHosts === undefined && c.listen !== undefined && WILDCARD_HOSTS.has(c.listen.host))
    problems.push('allowedHosts: is required when listening on every interface (set --host)')
  if (c.upstreamTimeoutMs === 0) problems.push('upstreamTimeout: must be more than 0')
  if (c.throttleDelayMs === 0) problems.push('throttleDelay: must be more than 0')
  if (c.listen !== undefined && !isLoopback(c.listen.host) && c.tls !== true)
    warnings.push(
      'the broker listens beyond loopback without --tls: bearer tokens cross the network in clear',
    )
  return { problems, warnings }
}

function problemsOf(load: () => unknown): readonly string[] {
  try {
    load()
    return []
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
}

/**
 * Loads the broker's configuration: the `--config` JSON file, then `TESSERA_BROKER_*` env vars, then
 * flags (`listen`, `routes`, `secrets`, `audience`, `upstreamCa`, …). The Workload API endpoint is
 * `--socket`, else `SPIFFE_ENDPOINT_SOCKET`, else the default agent socket.
 * @throws ConfigError (ERR_CONFIG_INVALID) with every problem
 * @example
 * const config = loadBrokerConfig({ flags: { listen: '127.0.0.1:8081', routes: 'routes.json', audience: ['broker'] } })
 */
export function loadBrokerConfig(input: ConfigInput = {}): BrokerConfig {
  const { socket, ...flags } = input.flags ?? {}
  const definition = { schema: BROKER_SCHEMA, envPrefix: BROKER_ENV_PREFIX, check: checkBrokerSettings }
  let loaded: LoadedConfig<BrokerSettings> | undefined
  let endpoint: WorkloadEndpoint | undefined
  const problems = [
    ...problemsOf(() => {
      loaded = loadConfig(definition, { ...input, flags })
    }),
    ...problemsOf(() => {
      endpoint = loadWorkloadCliConfig({ ...input, flags: { socket } }).endpoint
    }),
  ]
  if (problems.length > 0 || loaded === undefined || endpoint === undefined) throw new ConfigError(problems)
  const { config, warnings, configFile } = loaded
  return Object.freeze({ ...config, endpoint, warnings, configFile })
}
