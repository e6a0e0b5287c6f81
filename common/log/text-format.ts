import type { DestinationStream } from 'pino'

/** Fields the line's fixed columns show; everything else follows as `key=value`. */
const COLUMNS = new Set(['time', 'level', 'component', 'msg'])
const BARE_VALUE = /^[^\s"=]+$/

function formatValue(value: unknown): string {
  if (typeof value === 'string') return BARE_VALUE.test(value) ? value : JSON.stringify(value)
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value)
  return JSON.stringify(value) ?? String(value)
}

/** `key=value` pairs, nested plain objects flattened with dots (`err.message="boom"`). */
function formatFields(record: Readonly<Record<string, unknown>>, prefix: string): string[] {
  const pairs: string[] = []
  for (const [key, value] of Object.entries(record)) {
    if (prefix === '' && COLUMNS.has(key)) continue
    if (key === 'stack' && prefix === 'err.') continue
    if (typeof value === 'object' && value !== null && !Array.isArray(value))
      pairs.push(...formatFields(value as Record<string, unknown>, `${prefix}${key}.`))
    else if (value !== undefined) pairs.push(`${prefix}${key}=${formatValue(value)}`)
  }
  return pairs
}

function column(value: unknown, fallback: string): string {
  return typeof value === 'string' && value !== '' ? value : fallback
}

/**
 * One pino JSON line as `time LEVEL component msg key=value …`, then an error's stack, indented, on
 * the lines below. A line that is not a JSON object passes through unchanged.
 */
export function formatTextLine(jsonLine: string): string {
  let record: unknown
  try {
    record = JSON.parse(jsonLine)
  } catch {
    return jsonLine
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) return jsonLine
  const fields = record as Record<string, unknown>
  const head = [
    column(fields['time'], '-'),
    column(fields['level'], '-').toUpperCase().padEnd(5),
    column(fields['component'], '-'),
    column(fields['msg'], '-'),
  ]
  const stack = (fields['err'] as { stack?: unknown } | undefined)?.stack
  const tail = typeof stack === 'string' ? `\n    ${stack.split('\n').join('\n    ')}` : ''
  return `${[...head, ...formatFields(fields, '')].join(' ')}${tail}\n`
}

/** A destination that writes each pino line to `out` in the text format, synchronously. */
export function createTextDestination(out: DestinationStream): DestinationStream {
  return { write: (line: string) => out.write(formatTextLine(line)) }
}
