import { join } from 'node:path'
import {
  booleanKind,
  durationKind,
  enumKind,
  hostPortKind,
  integerKind,
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
import type { TrustDomain } from '../lib/core/trust-domain.js'

/** The settings of `tessera agent run`; each is a file key, a `TESSERA_AGENT_*` var and a flag. */
export interface AgentSettings {
  /** Root of the agent's state (its SVID and key, 0600); the other paths default inside it. */
  readonly dataDir: string
  /** The server's agent API, `host:port`. */
  readonly serverAddress: string
  /** Workload API Unix socket (`--socket`). */
  readonly socketPath: string
  readonly trustDomain: TrustDomain
  /** Join token for the first attestation. A secret: prefer the env var to the flag; never logged. */
  readonly joinToken: string | undefined
  /** The server's trust bundle for bootstrap (`--trust-bundle`). */
  readonly trustBundlePath: string | undefined
  /** Trust the first server reached, for development only. Exclusive with `trustBundlePath`. */
  readonly insecureBootstrap: boolean
  readonly logLevel: LogLevel
  readonly logFormat: LogFormat
  /** Audit log file, or `-` for standard output. */
  readonly auditLogPath: string
  /** Sign an audit checkpoint after this many lines (and at the interval, and at stop). */
  readonly auditCheckpointLines: number
  readonly auditCheckpointIntervalMs: number
  /** Largest executable hashed for `unix:sha256` selectors; 0 means no limit, negative disables hashing. */
  readonly hashSizeLimitBytes: number
  /** Serve `ValidateJWTSVID` and bundles to callers that match no entry (SPIRE's option of the same name). */
  readonly allowUnauthenticatedVerifiers: boolean
  /** Workload API connections one uid may hold at once; more are dropped at accept. */
  readonly maxConnectionsPerUid: number
  /** A Workload API connection with no call in flight and no open stream this long is closed. */
  readonly connectionIdleTimeoutMs: number
  /** Repeated refusals of one kind within this window are audited as one summary line. */
  readonly auditSummaryWindowMs: number
  /** BeginTask calls one uid and executable may make: a burst of 4× this, then this many a second. */
  readonly beginTaskPerSecond: number
  /**
   * Benchmarks only (a hidden flag): serve Workload API connections without binding them to their
   * process (DESIGN §6.1), to measure what the binding costs. Logged loudly when on.
   */
  readonly unsafeBenchNoBindingChecks: boolean
}

/** The agent's validated, deep-frozen configuration. */
export interface AgentConfig extends AgentSettings {
  /** Settings that are allowed but unwise; `main` logs each at `warn`. */
  readonly warnings: readonly string[]
  /** Absolute path of the config file read, if any. */
  readonly configFile: string | undefined
}

export const AGENT_ENV_PREFIX = 'TESSERA_AGENT_'

/** 512 MiB. */
const DEFAULT_HASH_SIZE_LIMIT_BYTES = 512 * 1024 * 1024

function inDataDir(...segments: string[]) {
  return (c: Partial<AgentSettings>) => (c.dataDir === undefined ? undefined : join(c.dataDir, ...segments))
}

/** Every agent setting and its default, in one place. */
const AGENT_SCHEMA: Schema<AgentSettings> = {
  dataDir: { kind: pathKind(), default: './.tessera/agent' },
  serverAddress: { kind: hostPortKind(), default: '127.0.0.1:8081' },
  socketPath: { kind: socketPathKind(), flag: 'socket', default: inDataDir('public', 'api.sock') },
  trustDomain: { kind: trustDomainKind(), default: 'tessera.local' },
  joinToken: { kind: stringKind({ pattern: /^\S+$/, hint: 'a token without spaces' }), isOptional: true },
  trustBundlePath: { kind: pathKind(), flag: 'trustBundle', isOptional: true },
  insecureBootstrap: { kind: booleanKind(), default: false },
  logLevel: { kind: enumKind(LOG_LEVELS), default: 'info' },
  logFormat: { kind: enumKind(LOG_FORMATS), default: 'json' },
  auditLogPath: { kind: pathKind({ allowStdout: true }), default: inDataDir('audit.log') },
  auditCheckpointLines: { kind: integerKind({ min: 1, max: 1_000_000 }), default: 1000 },
  auditCheckpointIntervalMs: { kind: durationKind(), name: 'auditCheckpointInterval', default: '60s' },
  hashSizeLimitBytes: { kind: integerKind(), default: DEFAULT_HASH_SIZE_LIMIT_BYTES },
  allowUnauthenticatedVerifiers: { kind: booleanKind(), default: false },
  maxConnectionsPerUid: { kind: integerKind({ min: 1 }), default: 1024 },
  connectionIdleTimeoutMs: { kind: durationKind(), name: 'connectionIdleTimeout', default: '5m' },
  auditSummaryWindowMs: { kind: durationKind(), name: 'auditSummaryWindow', default: '10s' },
  beginTaskPerSecond: { kind: integerKind({ min: 1, max: 100_000 }), default: 5 },
  unsafeBenchNoBindingChecks: { kind: booleanKind(), default: false },
}

/**
 * A trust bundle and insecure bootstrap exclude each other. Whether one of them is needed (no
 * persisted agent SVID yet) is the agent's check at start, not the loader's.
 */
function checkAgentSettings(c: Partial<AgentSettings>): CheckResult {
  const problems: string[] = []
  const warnings: string[] = []
  if (c.trustBundlePath !== undefined && c.insecureBootstrap === true)
    problems.push('trustBundlePath and insecureBootstrap: set one or the other, not both')
  if (c.insecureBootstrap === true)
    warnings.push(
      'insecureBootstrap is on: the agent trusts whatever server it reaches first; use it for development only',
    )
  if (c.hashSizeLimitBytes !== undefined && c.hashSizeLimitBytes < 0)
    warnings.push(
      'hashSizeLimitBytes is negative: executables are not hashed and unix:sha256 selectors never match',
    )
  if (c.unsafeBenchNoBindingChecks === true)
    warnings.push(
      'unsafeBenchNoBindingChecks is on: a process that execs, is traced, preloads code or hands its socket on keeps its identity; for benchmarks only',
    )
  return { problems, warnings }
}

/**
 * Loads the agent's configuration: the `--config` JSON file, then `TESSERA_AGENT_*` env vars, then
 * flags (commander's option keys: `dataDir`, `serverAddress`, `socket`, `trustBundle`, …).
 * @throws ConfigError (ERR_CONFIG_INVALID) with every problem
 */
export function loadAgentConfig(input: ConfigInput = {}): AgentConfig {
  const definition = { schema: AGENT_SCHEMA, envPrefix: AGENT_ENV_PREFIX, check: checkAgentSettings }
  const { config, warnings, configFile } = loadConfig(definition, input)
  return Object.freeze({ ...config, warnings, configFile })
}
