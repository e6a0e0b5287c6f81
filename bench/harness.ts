/** One figure printed by `npm run bench` and written to bench/results.json. */
export interface BenchResult {
  readonly name: string
  readonly value: number
  readonly unit: string
  /** The limit measured in the same run that `value` is compared against (same unit), if any. */
  readonly baseline: number | null
  /** value ÷ baseline, if there is a baseline. */
  readonly ratio: number | null
  /** The target this figure must meet, in words, if any. */
  readonly target?: string
  /** Whether the target is met; undefined when there is none. */
  readonly met?: boolean
}

const WARMUP_MS = 300
const MEASURE_MS = 1500

/** Runs a synchronous operation repeatedly on this thread and returns its rate in operations per second. */
export function measureSync(op: () => unknown, measureMs = MEASURE_MS): number {
  const until = (ms: number) => {
    const start = performance.now()
    let n = 0
    let elapsed = 0
    do {
      for (let i = 0; i < 64; i++) op()
      n += 64
      elapsed = performance.now() - start
    } while (elapsed < ms)
    return (n * 1000) / elapsed
  }
  until(WARMUP_MS)
  return until(measureMs)
}

/** Runs an async operation back to back (concurrency 1) and returns its rate in operations per second. */
export async function measureAsync(op: () => Promise<unknown>, measureMs = MEASURE_MS): Promise<number> {
  const until = async (ms: number) => {
    const start = performance.now()
    let n = 0
    let elapsed = 0
    do {
      for (let i = 0; i < 16; i++) await op()
      n += 16
      elapsed = performance.now() - start
    } while (elapsed < ms)
    return (n * 1000) / elapsed
  }
  await until(WARMUP_MS)
  return until(measureMs)
}

/** A rate beside its baseline, with the ratio and an optional minimum ratio as the target. */
export function compare(name: string, value: number, baseline: number, minRatio?: number): BenchResult {
  const ratio = value / baseline
  return {
    name,
    value: Math.round(value),
    unit: 'ops/s',
    baseline: Math.round(baseline),
    ratio: Math.round(ratio * 1000) / 1000,
    ...(minRatio === undefined ? {} : { target: `ratio ≥ ${minRatio}`, met: ratio >= minRatio }),
  }
}

/** Formats results as an aligned table. */
export function formatTable(results: ReadonlyArray<BenchResult>): string {
  const rows = results.map((r) => [
    r.name,
    `${r.value.toLocaleString('en-US')} ${r.unit}`,
    r.baseline === null ? '' : `${r.baseline.toLocaleString('en-US')} ${r.unit}`,
    r.ratio === null ? '' : r.ratio.toFixed(3),
    r.target === undefined ? '' : `${r.target} ${r.met ? 'MET' : 'MISSED'}`,
  ])
  const head = ['benchmark', 'value', 'baseline (same run)', 'ratio', 'target']
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd()
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')
}
