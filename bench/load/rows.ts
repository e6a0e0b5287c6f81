import type { BenchResult } from '../harness.js'

/** `x` rounded to `digits` decimals. */
export function round(x: number, digits = 0): number {
  return Math.round(x * 10 ** digits) / 10 ** digits
}

/** A target in words and whether it is met. */
export type Target = readonly [text: string, met: boolean]

/** A figure with no baseline. */
export function plainRow(name: string, value: number, unit: string, target?: Target): BenchResult {
  const row = { name, value: round(value, 1), unit, baseline: null, ratio: null }
  return target ? { ...row, target: target[0], met: target[1] } : row
}

/** A figure beside its baseline from the same run (same unit), with value ÷ baseline. */
export function comparedRow(
  name: string,
  measured: { value: number; baseline: number; unit: string; digits?: number },
  target?: Target,
): BenchResult {
  const { value, baseline, unit, digits = 1 } = measured
  return {
    ...plainRow(name, value, unit, target),
    value: round(value, digits),
    baseline: round(baseline, digits),
    ratio: round(value / baseline, 3),
  }
}

/** The target for an RSS limit given in MB (10^6 bytes) on a figure in MiB. */
export function rssTarget(limitMb: number, mib: number): Target {
  const limitMib = (limitMb * 1e6) / 2 ** 20
  return [`< ${limitMb} MB (${Math.floor(limitMib)} MiB)`, mib < limitMib]
}
