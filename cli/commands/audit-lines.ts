import { parseDurationMs } from '../../lib/core/duration.js'
import { IdentityError } from '../../lib/core/errors.js'
import { unixSeconds } from '../output.js'

/** One audit line as `tessera audit tail|search` shows it. */
export type AuditLine = Readonly<Record<string, unknown>> & { readonly seq?: number; readonly time?: string }

/** What `tessera audit search` keeps: every criterion given must hold. */
export interface AuditFilter {
  /** A SPIFFE ID: the line's resource, or its actor. */
  readonly id?: string
  /** Who asked, exactly as the line's `actor` says (a SPIFFE ID, `unix:uid:1000:pid:42`, …). */
  readonly actor?: string
  /** What was asked for, exactly as the line's `resource` says. */
  readonly resource?: string
  readonly correlationId?: string
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

/** The line's resource; `subject` on a line written before the fields took the agent-auth names. */
export function resourceOf(line: AuditLine): unknown {
  return line['resource'] ?? line['subject']
}

/** The line's actor; on an older line without one, the caller's SPIFFE ID. */
function actorOf(line: AuditLine): unknown {
  return line['actor'] ?? callerOf(line)['spiffeId']
}

/** Whether `line` meets every criterion of `filter`. */
export function matches(line: AuditLine, filter: AuditFilter): boolean {
  if (filter.id !== undefined && resourceOf(line) !== filter.id && actorOf(line) !== filter.id) return false
  if (filter.actor !== undefined && actorOf(line) !== filter.actor) return false
  if (filter.resource !== undefined && resourceOf(line) !== filter.resource) return false
  if (filter.correlationId !== undefined && line['correlationId'] !== filter.correlationId) return false
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

/** Who asked, for people: the actor, with the executable of a Workload API caller. */
function describeActor(line: AuditLine): string {
  const actor = line['actor']
  if (typeof actor !== 'string') return describeCaller(callerOf(line))
  const exe = callerOf(line)['exe']
  return typeof exe === 'string' ? `${actor} (${exe})` : actor
}

/**
 * One line for people: time, seq, event, outcome, action and resource, code, who asked (the
 * actor), the correlation id, and the reason when there is one.
 */
export function formatAuditLine(line: AuditLine): string {
  if (typeof line['unparsed'] === 'string') return `(not an audit record) ${line['unparsed']}`
  const action = line['action']
  const cells = [
    line.time ?? '-',
    `#${line.seq ?? '-'}`,
    String(line['event'] ?? '-'),
    String(line['outcome'] ?? '-'),
    `${action === undefined ? '' : `${String(action)} `}${String(resourceOf(line) ?? '-')}`,
    String(line['code'] ?? '-'),
    `by ${describeActor(line)}`,
  ]
  if (typeof line['delegatedSubject'] === 'string') cells.push(`for ${line['delegatedSubject']}`)
  if (typeof line['correlationId'] === 'string') cells.push(`corr=${line['correlationId']}`)
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
