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
  spiffeIdKind,
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
import type { SpiffeId } from '../lib/core/spiffe-id.js'
import { normalizeAllowedHost, normalizeAllowedOrigin } from '../lib/guard/host-origin.js'
import type { WorkloadEndpoint } from '../lib/workload/endpoint.js'
import type { ListenAddress } from './gateway-server.js'
import { parseUpstream, type UpstreamTarget } from './upstream.js'

/** The settings of `tessera gateway`; each is a file key, a `TESSERA_GATEWAY_*` var and a flag. */
export interface GatewaySettings {
  /** `host:port` to listen on (`--listen`); port 0 picks a free one (logged at start). */
  readonly listen: ListenAddress
  /** The tool: `unix:///path/tool.sock` or `http://host:port` (`--upstream`). */
  readonly upstream: UpstreamTarget
  /** Bearer JWT-SVIDs must carry one of these audiences (`--audience`, repeatable). */
  readonly audience: readonly string[]
  /** JSON policy file (`--policy`); without one every authenticated caller is allowed. */
  readonly policyPath: string | undefined
  /** Origins whose browser pages may call (`--allow-origin`, repeatable); default none. */
  readonly allowedOrigins: readonly string[]
  /** Names the Host header may carry (`--host`, repeatable); default the listen host, plus `localhost` on loopback. */
  readonly allowedHosts: readonly string[]
  /** Serve HTTPS with the gateway's own X509-SVID and accept client certificates (`--tls`). */
  readonly tls: boolean
  /**
   * Require proof of possession (`--require-proof`): a WIT-SVID with a Workload Proof Token for the
   * request, or a TLS client certificate; a bearer JWT-SVID alone is refused. Default false (WIT + WPT
   * is then one more way in).
   */
  readonly requireProof: boolean
  /** With TLS, the SVID to present, by SPIFFE ID (`--spiffe-id`); default the workload's first (default) SVID. */
  readonly spiffeId: SpiffeId | undefined
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

/** The gateway's validated, deep-frozen configuration. */
export interface GatewayConfig extends GatewaySettings {
  /** The Workload API: `--socket`, else `SPIFFE_ENDPOINT_SOCKET`, else the default agent socket. */
  readonly endpoint: WorkloadEndpoint
  readonly warnings: readonly string[]
  readonly configFile: string | undefined
}

export const GATEWAY_ENV_PREFIX = 'TESSERA_GATEWAY_'

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

const upstreamKind: Kind<UpstreamTarget> = (value) => parseUpstream(typeof value === 'string' ? value : '')
const originKind: Kind<string> = (value) => normalizeAllowedOrigin(typeof value === 'string' ? value : '')
const allowedHostKind: Kind<string> = (value) => normalizeAllowedHost(typeof value === 'string' ? value : '')

const WILDCARD_HOSTS: ReadonlySet<string> = new Set(['0.0.0.0', '::'])

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.')
}

function defaultHosts(c: Partial<GatewaySettings>): readonly string[] | undefined {
  const host = c.listen?.host
  if (host === undefined || WILDCARD_HOSTS.has(host)) return undefined
  return isLoopback(host) && host !== 'localhost' ? [host, 'localhost'] : [host]
}

/** Every gateway setting and its default, in one place. */
const GATEWAY_SCHEMA: Schema<GatewaySettings> = {
  listen: { kind: listenKind() },
  upstream: { kind: upstreamKind },
  audience: { kind: listKind(stringKind({ pattern: /^\S+$/, hint: 'an audience without spaces' })) },
  policyPath: { kind: pathKind(), name: 'policy', isOptional: true },
  allowedOrigins: { kind: listKind(originKind), flag: 'allowOrigin', default: [] },
  allowedHosts: { kind: listKind(allowedHostKind), flag: 'host', default: defaultHosts },
  tls: { kind: booleanKind(), default: false },
  requireProof: { kind: booleanKind(), default: false },
  spiffeId: { kind: spiffeIdKind(), isOptional: true },
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

function checkGatewaySettings(c: Partial<GatewaySettings>) {
  const problems: string[] = []
  const warnings: string[] = []
  if (c.audience?.length === 0) problems.push('audience: needs at least one audience')
  if (c.allowedHosts?.length === 0) problems.push('allowedHosts: needs at least one name')
  if (c.allowedHosts === undefined && c.listen !== undefined && WILDCARD_HOSTS.has(c.listen.host))
    problems.push('allowedHosts: is required when listening on every interface (set --host)')
  if (c.spiffeId !== undefined && c.tls !== true)
    problems.push('spiffeId: chooses the SVID the gateway presents, which it does only with --tls')
  if (c.upstreamTimeoutMs === 0) problems.push('upstreamTimeout: must be more than 0')
  if (c.throttleDelayMs === 0) problems.push('throttleDelay: must be more than 0')
  if (c.listen !== undefined && !isLoopback(c.listen.host) && c.tls !== true)
    warnings.push(
      'the gateway listens beyond loopback without --tls: bearer tokens cross the network in clear',
    )
  if (c.policyPath === undefined)
    warnings.push('no policy: every caller with a valid SVID of a trusted trust domain is allowed')
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
 * Loads the gateway's configuration: the `--config` JSON file, then `TESSERA_GATEWAY_*` env vars,
 * then flags (commander's keys: `listen`, `upstream`, `audience`, `policy`, `allowOrigin`, `host`,
 * `tls`, …). The Workload API endpoint is `--socket` (flag key `socket`), else
 * `SPIFFE_ENDPOINT_SOCKET`, else the default agent socket.
 * @throws ConfigError (ERR_CONFIG_INVALID) with every problem
 * @example
 * const config = loadGatewayConfig({ flags: { listen: '127.0.0.1:8080', upstream: 'unix:///run/tool.sock', audience: ['tool'] } })
 */
export function loadGatewayConfig(input: ConfigInput = {}): GatewayConfig {
  const { socket, ...flags } = input.flags ?? {}
  const definition = { schema: GATEWAY_SCHEMA, envPrefix: GATEWAY_ENV_PREFIX, check: checkGatewaySettings }
  let loaded: LoadedConfig<GatewaySettings> | undefined
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
