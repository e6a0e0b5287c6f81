import { readFileSync } from 'node:fs'

/** Descriptors kept back for everything that is not a connection: files, the server link, workers. */
const RESERVED_FDS = 512

/**
 * The soft limit in the text of `/proc/<pid>/limits`; undefined when it is missing or unlimited.
 */
export function parseOpenFileLimit(limitsText: string): number | undefined {
  const line = limitsText.split('\n').find((l) => l.startsWith('Max open files'))
  const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0]
  return soft !== undefined && /^\d+$/.test(soft) ? Number(soft) : undefined
}

/**
 * The soft RLIMIT_NOFILE of this process (Node raises it to the hard limit at start), read from
 * `/proc/self/limits`; undefined when it cannot be read or is unlimited.
 */
export function openFileLimit(): number | undefined {
  try {
    return parseOpenFileLimit(readFileSync('/proc/self/limits', 'utf8'))
  } catch {
    return undefined
  }
}

/**
 * How many connections fit in the descriptors this process may open, when each costs
 * `fdsPerConnection`, capped at `ceiling`: a cap above that would let connections run the process
 * out of descriptors (EMFILE), and then every caller is refused, not just the one over its share.
 */
export function connectionBudget(
  fdsPerConnection: number,
  ceiling: number,
  limit: number | undefined,
): number {
  if (limit === undefined) return ceiling
  return Math.max(16, Math.min(ceiling, Math.floor((limit - RESERVED_FDS) / fdsPerConnection)))
}
