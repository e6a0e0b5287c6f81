import { join } from 'node:path'
import {
  booleanKind,
  durationKind,
  enumKind,
  hostKind,
  integerKind,
  type Kind,
  listKind,
  MAX_UNIX_ID,
  pathKind,
  socketPathKind,
  stringKind,
  trustDomainKind,
} from '../common/config/config-fields.js'
import {
  type CheckResult,
  type ConfigInput,
  loadConfig,
  type Schema,
} from '../common/config/config-source.js'
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from '../common/log/logger.js'
import { formatDurationMs } from '../lib/core/duration.js'
import { IdentityError } from '../lib/core/errors.js'
import type { TrustDomain } from '../lib/core/trust-domain.js'

/** The settings of `tessera server run`; each is a file key, a `TESSERA_SERVER_*` var and a flag. */
export interface ServerSettings {
  /** Root of the server's state; the other paths default inside it. */
  readonly dataDir: string
  readonly trustDomain: TrustDomain
  /** Agent API (TCP + mTLS) address and port; port 0 picks a free one (tests). */
  readonly bindAddress: string
  readonly bindPort: number
  /** Admin API Unix socket. */
  readonly adminSocket: string
  /** Uids allowed on the admin socket besides the server's own (`--admin-uid`, repeatable). */
  readonly adminUids: readonly number[]
  readonly defaultX509SvidTtlMs: number
  readonly defaultJwtSvidTtlMs: number
  /** The shortest X509-SVID TTL an entry may ask for (a floor against endless re-signing). */
  readonly minX509SvidTtlMs: number
  /** The shortest JWT-SVID TTL an entry may ask for. */
  readonly minJwtSvidTtlMs: number
  readonly caTtlMs: number
  readonly agentSvidTtlMs: number
  readonly joinTokenTtlMs: number
  /** How long a pending request not seen again stays approvable (DESIGN §10). */
  readonly pendingTtlMs: number
  /** How long a denial is remembered: the same (uid, sha256, path) is no new request meanwhile. */
  readonly denyTtlMs: number
  /** Most pending requests kept (all states); past it the least recently seen are dropped and counted. */
  readonly maxPendingRequests: number
  /**
   * Task scopes that need a human (DESIGN §11; `--human-scope`, repeatable, `*` a wildcard): a
   * BeginTask for one waits for `tessera approval approve|deny`.
   */
  readonly humanScopes: readonly string[]
  /** How long such a BeginTask waits for the decision (and never past its caller's deadline). */
  readonly humanApprovalTimeoutMs: number
  /**
   * The audiences a task token may name (`--task-audience`, repeatable, `*` a wildcard). None: any
   * audience (with a warning at start); some: the own trust domain's SPIFFE IDs and those matching.
   */
  readonly taskAudiences: readonly string[]
  readonly logLevel: LogLevel
  readonly logFormat: LogFormat
  /** Audit log file, or `-` for standard output. */
  readonly auditLogPath: string
  /** Sign an audit checkpoint after this many lines (and at the interval, and at stop). */
  readonly auditCheckpointLines: number
  readonly auditCheckpointIntervalMs: number
  /** Repeated refusals of one kind (uid, call, code) within this window are audited as one summary line. */
  readonly auditSummaryWindowMs: number
  readonly dbPath: string
  /**
   * The `iss` of every JWT-SVID and the OIDC discovery issuer (`--jwt-issuer`): an https URL with
   * no query or fragment; cloud STS services accept a token only when the two are equal.
   */
  readonly jwtIssuer?: string | undefined
  /** OIDC discovery listener (`--oidc-discovery-port` turns it on; 0 picks a free port). */
  readonly oidcDiscoveryAddress: string
  readonly oidcDiscoveryPort?: number | undefined
  /** PEM certificate chain and key for the issuer's public host name. */
  readonly oidcTlsCertPath?: string | undefined
  readonly oidcTlsKeyPath?: string | undefined
  /** Serve discovery over plain HTTP (behind a TLS terminator, or for local tests). */
  readonly oidcInsecureHttp: boolean
}

/** The server's validated, deep-frozen configuration. */
export interface ServerConfig extends ServerSettings {
  /** Settings that are allowed but unwise; `main` logs each at `warn`. */
  readonly warnings: readonly string[]
  /** Absolute path of the config file read, if any. */
  readonly configFile: string | undefined
}

export const SERVER_ENV_PREFIX = 'TESSERA_SERVER_'

function inDataDir(file: string) {
  return (c: Partial<ServerSettings>) => (c.dataDir === undefined ? undefined : join(c.dataDir, file))
}

/** A human scope: an OAuth scope token (as lib/core/task/human-scopes.ts checks) with `*` as wildcard. */
const HUMAN_SCOPE = /^[\x21\x23-\x5B\x5D-\x7E]{1,128}$/

/** A task audience pattern (as server/tasks/task-audiences.ts checks): no spaces or control characters. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: they are what is refused
const TASK_AUDIENCE = /^[^\s\u0000-\u001f\u007f]{1,512}$/

/** Every server setting and its default, in one place. */
const SERVER_SCHEMA: Schema<ServerSettings> = {
  dataDir: { kind: pathKind(), default: './.tessera/server' },
  trustDomain: { kind: trustDomainKind(), default: 'tessera.local' },
  bindAddress: { kind: hostKind(), default: '127.0.0.1' },
  bindPort: { kind: integerKind({ min: 0, max: 65_535 }), default: 8081 },
  adminSocket: { kind: socketPathKind(), default: inDataDir('admin.sock') },
  adminUids: { kind: listKind(integerKind({ min: 0, max: MAX_UNIX_ID })), flag: 'adminUid', default: [] },
  defaultX509SvidTtlMs: { kind: durationKind(), name: 'defaultX509SvidTtl', default: '1h' },
  defaultJwtSvidTtlMs: { kind: durationKind(), name: 'defaultJwtSvidTtl', default: '5m' },
  minX509SvidTtlMs: { kind: durationKind(), name: 'minX509SvidTtl', default: '1m' },
  minJwtSvidTtlMs: { kind: durationKind(), name: 'minJwtSvidTtl', default: '30s' },
  caTtlMs: { kind: durationKind(), name: 'caTtl', default: '24h' },
  agentSvidTtlMs: { kind: durationKind(), name: 'agentSvidTtl', default: '1h' },
  joinTokenTtlMs: { kind: durationKind(), name: 'joinTokenTtl', default: '10m' },
  pendingTtlMs: { kind: durationKind(), name: 'pendingTtl', default: '24h' },
  denyTtlMs: { kind: durationKind(), name: 'denyTtl', default: '1h' },
  maxPendingRequests: { kind: integerKind({ min: 1, max: 100_000 }), default: 1000 },
  humanScopes: {
    kind: listKind(stringKind({ pattern: HUMAN_SCOPE, hint: 'a scope, * as a wildcard' })),
    flag: 'humanScope',
    default: [],
  },
  humanApprovalTimeoutMs: { kind: durationKind(), name: 'humanApprovalTimeout', default: '2m' },
  taskAudiences: {
    kind: listKind(
      stringKind({ pattern: TASK_AUDIENCE, hint: 'an audience without spaces, * as a wildcard' }),
    ),
    flag: 'taskAudience',
    default: [],
  },
  logLevel: { kind: enumKind(LOG_LEVELS), default: 'info' },
  logFormat: { kind: enumKind(LOG_FORMATS), default: 'json' },
  auditLogPath: { kind: pathKind({ allowStdout: true }), default: inDataDir('audit.log') },
  auditCheckpointLines: { kind: integerKind({ min: 1, max: 1_000_000 }), default: 1000 },
  auditCheckpointIntervalMs: { kind: durationKind(), name: 'auditCheckpointInterval', default: '60s' },
  auditSummaryWindowMs: { kind: durationKind(), name: 'auditSummaryWindow', default: '10s' },
  dbPath: { kind: pathKind(), default: inDataDir('datastore.sqlite3') },
  jwtIssuer: { kind: issuerUrlKind(), isOptional: true },
  oidcDiscoveryAddress: { kind: hostKind(), default: '127.0.0.1' },
  oidcDiscoveryPort: { kind: integerKind({ min: 0, max: 65_535 }), isOptional: true },
  oidcTlsCertPath: { kind: pathKind(), name: 'oidcTlsCert', isOptional: true },
  oidcTlsKeyPath: { kind: pathKind(), name: 'oidcTlsKey', isOptional: true },
  oidcInsecureHttp: { kind: booleanKind(), default: false },
}

/** SVID TTLs that must be shorter than the CA's, by the name they are set with. */
const SVID_TTLS = [
  ['defaultX509SvidTtl', 'defaultX509SvidTtlMs'],
  ['defaultJwtSvidTtl', 'defaultJwtSvidTtlMs'],
  ['agentSvidTtl', 'agentSvidTtlMs'],
] as const

/** The rotator activates the next CA when the active one has min(TTL / 6, 7 d) left (rotation-plan.ts). */
const ACTIVATE_CAP_MS = 7 * 86_400_000

/**
 * An SVID must expire before the CA that signs it: its TTL is below the CA TTL, or it is an error.
 * A CA signs until it has min(CA TTL / 6, 7 d) left, so a longer SVID issued late in the CA's life
 * is cut short by the CA's expiry: a warning (SPIRE's rule too).
 */
function checkServerSettings(c: Partial<ServerSettings>): CheckResult {
  const problems: string[] = []
  const warnings: string[] = []
  problems.push(...floorProblems(c))
  const oidc = oidcProblems(c)
  problems.push(...oidc.problems)
  warnings.push(...oidc.warnings)
  const caTtlMs = c.caTtlMs
  if (caTtlMs === undefined) return { problems, warnings }
  const longest = Math.min(Math.floor(caTtlMs / 6), ACTIVATE_CAP_MS)
  for (const [name, key] of SVID_TTLS) {
    const ttlMs = c[key]
    if (ttlMs === undefined) continue
    if (ttlMs >= caTtlMs)
      problems.push(`${name}: must be shorter than caTtl (${formatDurationMs(caTtlMs)}), the CA's lifetime`)
    else if (ttlMs > longest)
      warnings.push(
        `${name} (${formatDurationMs(ttlMs)}) is longer than ${formatDurationMs(longest)}, what a CA with caTtl ${formatDurationMs(caTtlMs)} has left when the next one takes over: SVIDs issued just before then will be cut short`,
      )
  }
  return { problems, warnings }
}

/** Default TTLs under the floors entries are held to, by the names they are set with. */
function floorProblems(c: Partial<ServerSettings>): string[] {
  const pairs = [
    ['defaultX509SvidTtl', c.defaultX509SvidTtlMs, 'minX509SvidTtl', c.minX509SvidTtlMs],
    ['defaultJwtSvidTtl', c.defaultJwtSvidTtlMs, 'minJwtSvidTtl', c.minJwtSvidTtlMs],
  ] as const
  return pairs.flatMap(([name, ttlMs, floorName, floorMs]) =>
    ttlMs !== undefined && floorMs !== undefined && ttlMs < floorMs
      ? [`${name}: must be at least ${floorName} (${formatDurationMs(floorMs)})`]
      : [],
  )
}

/**
 * OIDC discovery needs the issuer it publishes, and either the TLS files for its public name or an
 * explicit choice of plain HTTP (a TLS terminator in front); one or the other, never both.
 */
function oidcProblems(c: Partial<ServerSettings>): CheckResult {
  const problems: string[] = []
  const warnings: string[] = []
  const hasCert = c.oidcTlsCertPath !== undefined
  if (hasCert !== (c.oidcTlsKeyPath !== undefined))
    problems.push('oidcTlsCert and oidcTlsKey: give both or neither')
  if (c.oidcDiscoveryPort === undefined) {
    if (hasCert || c.oidcInsecureHttp === true)
      problems.push('oidcTlsCert, oidcTlsKey and oidcInsecureHttp need oidcDiscoveryPort')
    return { problems, warnings }
  }
  if (c.jwtIssuer === undefined)
    problems.push('oidcDiscoveryPort: needs jwtIssuer, the issuer URL the discovery document publishes')
  if (hasCert && c.oidcInsecureHttp === true)
    problems.push('oidcInsecureHttp: give it or oidcTlsCert/oidcTlsKey, not both')
  else if (!hasCert && c.oidcInsecureHttp !== true)
    problems.push(
      'oidcDiscoveryPort: needs oidcTlsCert and oidcTlsKey, or oidcInsecureHttp behind a TLS terminator',
    )
  if (c.oidcInsecureHttp === true)
    warnings.push(
      'OIDC discovery is served over plain HTTP (oidcInsecureHttp): cloud providers fetch it only over HTTPS, so put a TLS terminator for the issuer host in front',
    )
  return { problems, warnings }
}

/** An OIDC issuer: an absolute http(s) URL with no credentials, query, fragment or trailing slash. */
function issuerUrlKind(): Kind<string> {
  const rule =
    'must be an https URL with no query, fragment or trailing slash, such as https://oidc.example.org'
  return (value) => {
    if (typeof value !== 'string' || !URL.canParse(value)) throw new IdentityError('ERR_CONFIG_INVALID', rule)
    const url = new URL(value)
    const isHttp = url.protocol === 'https:' || url.protocol === 'http:'
    const isBare = url.username === '' && url.password === '' && url.search === '' && url.hash === ''
    if (!isHttp || !isBare || value.endsWith('/') || value.includes('?') || value.includes('#'))
      throw new IdentityError('ERR_CONFIG_INVALID', rule)
    return value
  }
}

/**
 * Loads the server's configuration: the `--config` JSON file, then `TESSERA_SERVER_*` env vars,
 * then flags (commander's option keys: `dataDir`, `bindPort`, `adminUid`, `caTtl`, …).
 * @throws ConfigError (ERR_CONFIG_INVALID) with every problem
 */
export function loadServerConfig(input: ConfigInput = {}): ServerConfig {
  const definition = { schema: SERVER_SCHEMA, envPrefix: SERVER_ENV_PREFIX, check: checkServerSettings }
  const { config, warnings, configFile } = loadConfig(definition, input)
  return Object.freeze({ ...config, warnings, configFile })
}
