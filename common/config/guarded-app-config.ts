import { isIP } from 'node:net'
import { IdentityError } from '../../lib/core/errors.js'
import { normalizeAllowedHost } from '../../lib/guard/host-origin.js'
import type { WorkloadEndpoint } from '../../lib/workload/endpoint.js'
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from '../log/logger.js'
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
} from './config-fields.js'
import {
  type CheckResult,
  type ConfigDefinition,
  ConfigError,
  type ConfigInput,
  type LoadedConfig,
  loadConfig,
  type Schema,
} from './config-source.js'
import { loadWorkloadCliConfig } from './workload-endpoint.js'

/** Where an HTTP front (the gateway, the broker) listens. Port 0 picks a free port. */
export interface ListenAddress {
  readonly host: string
  readonly port: number
}

/**
 * The settings every guarded HTTP front shares (`tessera gateway`, `tessera broker`): where it
 * listens, whom it lets in and how, and its logs. Each app adds its own fields to these.
 */
export interface GuardedAppSettings {
  /** `host:port` to listen on (`--listen`); port 0 picks a free one (logged at start). */
  readonly listen: ListenAddress
  /** Bearer JWT-SVIDs (and, at the broker, task tokens) must carry one of these audiences (`--audience`, repeatable). */
  readonly audience: readonly string[]
  /** Names the Host header may carry (`--host`, repeatable); default the listen host, plus `localhost` on loopback. */
  readonly allowedHosts: readonly string[]
  /** Serve HTTPS with the app's own X509-SVID and accept client certificates (`--tls`). */
  readonly tls: boolean
  /**
   * Require proof of possession (`--require-proof`): a WIT-SVID with a Workload Proof Token for the
   * request, or (where the app allows it) a TLS client certificate; a bearer JWT-SVID alone is refused.
   */
  readonly requireProof: boolean
  /** How long the upstream may take to answer with headers (`--upstream-timeout`, default 30s). */
  readonly upstreamTimeoutMs: number
  /** Failed authentications from one peer before it is throttled (default 5). */
  readonly throttleFailures: number
  /** The first throttle block (default 1s); each further failure doubles it. */
  readonly throttleDelayMs: number
  /** The longest throttle block (default 5m). */
  readonly throttleMaxDelayMs: number
  readonly logLevel: LogLevel
  readonly logFormat: LogFormat
  /** Audit log file, or `-` for standard output (the default). */
  readonly auditLogPath: string
  /** Sign an audit checkpoint after this many lines (and at the interval, and at stop). */
  readonly auditCheckpointLines: number
  readonly auditCheckpointIntervalMs: number
}

/** What a guarded app's loader adds to its settings. */
export interface GuardedAppLoaded {
  /** The Workload API: `--socket`, else `SPIFFE_ENDPOINT_SOCKET`, else the default agent socket. */
  readonly endpoint: WorkloadEndpoint
  readonly warnings: readonly string[]
  readonly configFile: string | undefined
}

function invalid(message: string): IdentityError {
  return new IdentityError('ERR_CONFIG_INVALID', message)
}

/** `host:port` or `[ipv6]:port` with a port from 0 to 65535. */
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

/** The listen host, plus `localhost` on a loopback address; none (so `--host` is needed) on a wildcard. */
function defaultHosts(c: Partial<GuardedAppSettings>): readonly string[] | undefined {
  const host = c.listen?.host
  if (host === undefined || WILDCARD_HOSTS.has(host)) return undefined
  return isLoopback(host) && host !== 'localhost' ? [host, 'localhost'] : [host]
}

/** The shared fields and their defaults; an app spreads this into its own schema. */
export const GUARDED_APP_SCHEMA: Schema<GuardedAppSettings> = {
  listen: { kind: listenKind() },
  audience: { kind: listKind(stringKind({ pattern: /^\S+$/, hint: 'an audience without spaces' })) },
  allowedHosts: { kind: listKind(allowedHostKind), flag: 'host', default: defaultHosts },
  tls: { kind: booleanKind(), default: false },
  requireProof: { kind: booleanKind(), default: false },
  upstreamTimeoutMs: { kind: durationKind(), name: 'upstreamTimeout', default: '30s' },
  throttleFailures: { kind: integerKind({ min: 1, max: 1000 }), default: 5 },
  throttleDelayMs: { kind: durationKind(), name: 'throttleDelay', default: '1s' },
  throttleMaxDelayMs: { kind: durationKind(), name: 'throttleMaxDelay', default: '5m' },
  logLevel: { kind: enumKind(LOG_LEVELS), default: 'info' },
  logFormat: { kind: enumKind(LOG_FORMATS), default: 'json' },
  auditLogPath: { kind: pathKind({ allowStdout: true }), default: '-' },
  auditCheckpointLines: { kind: integerKind({ min: 1, max: 1_000_000 }), default: 1000 },
  auditCheckpointIntervalMs: { kind: durationKind(), name: 'auditCheckpointInterval', default: '60s' },
}

/**
 * The cross-field rules every guarded app shares: an audience and a Host name at least, `--host` on a
 * wildcard address, non-zero durations; and a warning, naming `app`, when it listens beyond loopback
 * without TLS. The app appends its own problems and warnings to the arrays returned.
 */
export function checkGuardedAppSettings(
  c: Partial<GuardedAppSettings>,
  app: string,
): { problems: string[]; warnings: string[] } {
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
      `the ${app} listens beyond loopback without --tls: bearer tokens cross the network in clear`,
    )
  return { problems, warnings }
}

/** The config's problems, or none; a non-config error is rethrown. */
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
 * Loads a guarded app's configuration with its `definition` (the file, then env, then flags) and the
 * Workload API endpoint from `--socket` (flag key `socket`), else `SPIFFE_ENDPOINT_SOCKET`, else the
 * default agent socket; the problems of both come out together.
 * @throws ConfigError (ERR_CONFIG_INVALID) with every problem
 */
export function loadGuardedAppConfig<C extends GuardedAppSettings>(
  definition: ConfigDefinition<C> & { readonly check: (c: Partial<C>) => CheckResult },
  input: ConfigInput,
): Readonly<C & GuardedAppLoaded> {
  const { socket, ...flags } = input.flags ?? {}
  let loaded: LoadedConfig<C> | undefined
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
