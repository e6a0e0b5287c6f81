import { type DestinationStream, type Logger, pino } from 'pino'
import { REDACT_CENSOR, SECRET_FIELDS } from './secret-fields.js'
import { createTextDestination } from './text-format.js'

/** Levels an operator can choose: `error` needs action, `warn` is degraded, `info` lifecycle, `debug` per request. */
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/** `json`: one JSON object a line. `text`: `time LEVEL component msg k=v …`, for people at a terminal. */
export const LOG_FORMATS = ['json', 'text'] as const
export type LogFormat = (typeof LOG_FORMATS)[number]

export { REDACT_CENSOR } from './secret-fields.js'

/**
 * The redact paths of the process log (the audit log censors the same {@link SECRET_FIELDS} itself,
 * see `AuditRecorder`). Each secret field is covered at the top level and one level down (`token`,
 * `*.token`); deeper fields are not (pino's wildcards cover one level), so log secrets-bearing
 * objects flat or not at all. Headers are also covered under `req.headers` and `metadata` (gRPC).
 */
export const REDACT_PATHS: readonly string[] = Object.freeze([
  ...SECRET_FIELDS.flatMap((field) => [field, `*.${field}`]),
  'req.headers.authorization',
  'req.headers.cookie',
  'metadata.authorization',
])

export interface LoggerOptions {
  readonly level: LogLevel
  readonly format: LogFormat
  /** Where lines go; standard error when left out (standard output stays free for CLI output). */
  readonly destination?: DestinationStream
  /** Process name put on every line (`server`, `agent`), useful when `tessera up` runs both. */
  readonly name?: string
}

/**
 * The root logger of a process; `main.ts` creates it and hands each component
 * `log.child({ component: 'ca.rotator' })`. No `pid`/`hostname` base fields: `pid` in Tessera's
 * logs is always a workload's. Time is ISO 8601, the level is its name.
 */
export function createLogger(options: LoggerOptions): Logger {
  const out = options.destination ?? pino.destination(2)
  const lines = options.format === 'text' ? createTextDestination(out) : out
  return pino(
    {
      level: options.level,
      base: options.name === undefined ? undefined : { name: options.name },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...REDACT_PATHS], censor: REDACT_CENSOR },
    },
    lines,
  )
}
