import { IdentityError } from './errors.js'

/** Longest duration accepted, ten years of 365 days, in milliseconds. */
export const MAX_DURATION_MS = 3650 * 86_400_000

/** Units from largest to smallest; a duration names each at most once, in this order. */
const UNITS: ReadonlyArray<readonly [suffix: string, ms: number]> = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
  ['ms', 1],
]
const UNIT_BY_SUFFIX: ReadonlyMap<string, { rank: number; size: number }> = new Map(
  UNITS.map(([suffix, size], rank) => [suffix, { rank, size }]),
)
/** One `<digits><unit>` component; `ms` is tried before `m`. */
const COMPONENT = /([0-9]+)(ms|d|h|m|s)/y
const PLAIN_SECONDS = /^[0-9]+$/
/** No sensible duration is this long; refusing early keeps junk cheap to reject. */
const MAX_INPUT_LENGTH = 64

function invalid(message: string): IdentityError {
  return new IdentityError('ERR_TTL_INVALID', message)
}

/** Sum of `1h30m`-style components, in ms; throws when the text is not such a sequence. */
function sumComponents(input: string): number {
  let total = 0
  let lastRank = -1
  COMPONENT.lastIndex = 0
  while (COMPONENT.lastIndex < input.length) {
    const match = COMPONENT.exec(input)
    const unit = UNIT_BY_SUFFIX.get(match?.[2] ?? '')
    if (match === null || unit === undefined) throw invalid('duration must look like 1h30m, 45s, 250ms or 2d')
    if (unit.rank <= lastRank)
      throw invalid('duration units must go from largest to smallest, each at most once')
    lastRank = unit.rank
    total += Number(match[1]) * unit.size
  }
  return total
}

/**
 * Parses a TTL for the CLI and config: `2d`, `1h30m`, `5m`, `45s`, `250ms`, units largest first,
 * each at most once; a plain integer means seconds, as SPIRE's `-ttl` does. Fractions are not
 * accepted (`90m`, not `1.5h`).
 * @throws ERR_TTL_INVALID when the text is malformed, zero, or longer than ten years
 * @example parseDurationMs('1h30m') // 5_400_000
 */
export function parseDurationMs(input: string): number {
  if (typeof input !== 'string' || input.length === 0) throw invalid('duration is missing')
  if (input.length > MAX_INPUT_LENGTH) throw invalid('duration is malformed')
  const ms = PLAIN_SECONDS.test(input) ? Number(input) * 1000 : sumComponents(input)
  if (ms === 0) throw invalid('duration must be greater than zero')
  if (ms > MAX_DURATION_MS) throw invalid('duration is longer than ten years')
  return ms
}

/**
 * Formats milliseconds for display, largest units first and zero parts left out: `1h30m`, `2d`,
 * `1m30s500ms`; `0` gives `0s`. {@link parseDurationMs} reads any positive result back.
 * @throws ERR_TTL_INVALID when `ms` is negative or not a safe integer
 * @example formatDurationMs(5_400_000) // '1h30m'
 */
export function formatDurationMs(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0)
    throw invalid('duration must be a non-negative integer of milliseconds')
  if (ms === 0) return '0s'
  let rest = ms
  let text = ''
  for (const [suffix, size] of UNITS) {
    const count = Math.floor(rest / size)
    if (count > 0) text += `${count}${suffix}`
    rest -= count * size
  }
  return text
}
