import { parseDurationMs } from '../../lib/core/duration.js'
import { IdentityError } from '../../lib/core/errors.js'
import { unixSeconds } from '../output.js'

/** One audit line as `tessera audit tail|search` shows it. */
export type AuditLine = Readonly<Record<string, unknown>> & { readonly seq?: number; readonly time?: string }

/** What `tessera audit search` keeps: every criterion given must hold. */
export interface AuditFilter {
  /** A SPIFFE ID: the line's subject, or its caller's SPIFFE ID. */
  readonly id?: string
  readonly event?: string
  readonly outcome?: string
  readonly sinceMs?: number
  readonly untilMs?: number
}

/**
 * A time bound as given: an ISO date, or a duration (`10m`, `2h`) meaning that long before `nowMs`.
 * @throws ERR_REQUEST_INVALID
 */
export function parseTimeBound(input: string, nowMs: number, flag: string): number {
  const date = Date.parse(input)
  if (!Number.isNaN(date) && /^\d{4}-/.test(input)) return date
  try {
    return nowMs - parseDurationMs(input)
  } catch {
    throw new IdentityError(
      'ERR_REQUEST_INVALID',
      `${flag} must be an ISO date or a duration such as 10m, not ${JSON.stringify(input)}`,
    )
  }
}

/** The lines of an audit file's text that are JSON objects; others (a damaged line) as `{ unparsed }`. */
export function parseAuditLines(text: string): AuditLine[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      try {
        const value: unknown = JSON.parse(l)
        if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as AuditLine
      } catch {
        // shown as it is
      }
      return { unparsed: l }
    })
}

function callerOf(line: AuditLine): Record<string, unknown> {
  const caller = line['caller']
  return typeof caller === 'object' && caller !== null ? (caller as Record<string, unknown>) : {}
}

/** Whether `line` meets every criterion of `filter`. */
export function matches(line: AuditLine, filter: AuditFilter): boolean {
  if (filter.id !== undefined && line['subject'] !== filter.id && callerOf(line)['spiffeId'] !== filter.id)
    return false
  if (filter.event !== undefined && line['event'] !== filter.event) return false
  if (filter.outcome !== undefined && line['outcome'] !== filter.outcome) return false
  if (filter.sinceMs !== undefined || filter.untilMs !== undefined) {
    const at = typeof line.time === 'string' ? Date.parse(line.time) : Number.NaN
    if (Number.isNaN(at)) return false
    if (filter.sinceMs !== undefined && at < filter.sinceMs) return false
    if (filter.untilMs !== undefined && at > filter.untilMs) return false
  }
  return true
}

function describeCaller(caller: Record<string, unknown>): string {
  const parts = Object.entries(caller)
    .filter(([k]) => k !== 'kind')
    .map(([k, v]) => `${k}=${String(v)}`)
  return [String(caller['kind'] ?? '?'), ...parts].join(' ')
}

/** One line for people: time, seq, event, outcome, subject, code, who asked, and the reason when there is one. */
export function formatAuditLine(line: AuditLine): string {
  if (typeof line['unparsed'] === 'string') return `(not an audit record) ${line['unparsed']}`
  const cells = [
    line.time ?? '-',
    `#${line.seq ?? '-'}`,
    String(line['event'] ?? '-'),
    String(line['outcome'] ?? '-'),
    String(line['subject'] ?? '-'),
    String(line['code'] ?? '-'),
    `by ${describeCaller(callerOf(line))}`,
  ]
  if (line['event'] === 'audit.checkpoint') cells.push(`size=${String(line['size'])}`)
  if (typeof line['reason'] === 'string') cells.push(`reason: ${line['reason']}`)
  return cells.join('  ')
}

function snakeCase(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
}

function snakeKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(snakeKeys)
  if (typeof value !== 'object' || value === null) return value
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [snakeCase(k), snakeKeys(v)]))
}

/**
 * One line as `--output json` shows it, in the CLI's JSON convention: snake_case names, and the
 * ISO `time` as `logged_at`, Unix seconds (`logged_at_ms` keeps the milliseconds).
 */
export function jsonViewOf(line: AuditLine): Record<string, unknown> {
  const { time, ...rest } = line
  const view = snakeKeys(rest) as Record<string, unknown>
  const ms = typeof time === 'string' ? Date.parse(time) : Number.NaN
  if (Number.isNaN(ms)) return view
  return { logged_at: unixSeconds(ms), logged_at_ms: ms, ...view }
}
