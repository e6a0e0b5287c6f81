import { isAbsolute, resolve } from 'node:path'
import { IdentityError } from '../../lib/core/errors.js'
import {
  ENDPOINT_SOCKET_ENV,
  parseWorkloadEndpoint,
  type WorkloadEndpoint,
} from '../../lib/workload/endpoint.js'
import { durationKind } from './config-fields.js'
import { ConfigError, type ConfigInput, deepFreeze } from './config-source.js'

/** The settings of the workload CLI commands (`tessera api …`, `tessera healthcheck`). */
export interface WorkloadCliConfig {
  /** `--socket`, else `SPIFFE_ENDPOINT_SOCKET`, else the default agent socket. */
  readonly endpoint: WorkloadEndpoint
  /** `--timeout` (default 10 s): how long one call may take. */
  readonly timeoutMs: number
}

/** Where `tessera agent run` puts its Workload API socket by default (data dir `./.tessera/agent`). */
export const DEFAULT_WORKLOAD_SOCKET = './.tessera/agent/public/api.sock'
/** `--timeout` when none is given. */
export const DEFAULT_WORKLOAD_TIMEOUT = '10s'

const URI_SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/

/** A plain relative path is made absolute against `cwd` (a CLI convenience); URIs are parsed as given. */
function parseCliEndpoint(value: string, cwd: string): WorkloadEndpoint {
  const isPlainRelative = value !== '' && !URI_SCHEME.test(value) && !isAbsolute(value)
  return parseWorkloadEndpoint(isPlainRelative ? resolve(cwd, value) : value)
}

function settle<T>(problems: string[], field: string, from: string, parse: () => T): T | undefined {
  try {
    return parse()
  } catch (err) {
    if (!(err instanceof IdentityError)) throw err
    problems.push(`${field}: ${err.message} (from ${from})`)
    return undefined
  }
}

function textFlag(flags: Readonly<Record<string, unknown>>, key: string): string | undefined {
  const value = flags[key]
  return typeof value === 'string' ? value : undefined
}

/**
 * Loads the workload CLI's settings: the endpoint from `--socket` (flag key `socket`), else the
 * `SPIFFE_ENDPOINT_SOCKET` env var, else {@link DEFAULT_WORKLOAD_SOCKET}; each may be `unix:///path`,
 * `tcp://IP:port` or a plain path (a relative one resolved against `cwd`). `--timeout` (flag key
 * `timeout`) is a duration such as `10s` or `500ms`. No config file: these are per-command settings.
 * @throws ConfigError (ERR_CONFIG_INVALID) with every problem
 * @example
 * const { endpoint, timeoutMs } = loadWorkloadCliConfig({ flags: { socket: '/run/tessera/api.sock' } })
 */
export function loadWorkloadCliConfig(input: ConfigInput = {}): WorkloadCliConfig {
  const flags = input.flags ?? {}
  const env = input.env ?? process.env
  const cwd = input.cwd ?? process.cwd()
  const problems: string[] = []
  const flagSocket = textFlag(flags, 'socket')
  const envSocket = env[ENDPOINT_SOCKET_ENV] || undefined
  const [socket, from] =
    flagSocket !== undefined
      ? [flagSocket, '--socket']
      : envSocket !== undefined
        ? [envSocket, ENDPOINT_SOCKET_ENV]
        : [DEFAULT_WORKLOAD_SOCKET, 'the default']
  const endpoint = settle(problems, 'socket', from, () => parseCliEndpoint(socket, cwd))
  const timeoutText = textFlag(flags, 'timeout')
  const timeoutMs = settle(problems, 'timeout', timeoutText === undefined ? 'the default' : '--timeout', () =>
    durationKind()(timeoutText ?? DEFAULT_WORKLOAD_TIMEOUT, { cwd, isText: true }),
  )
  if (timeoutMs === 0) problems.push('timeout: must be more than 0 (from --timeout)')
  if (problems.length > 0 || endpoint === undefined || timeoutMs === undefined)
    throw new ConfigError(problems)
  return deepFreeze({ endpoint, timeoutMs })
}
