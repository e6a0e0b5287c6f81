import { IdentityError } from '../lib/core/errors.js'
import { errorCodeOf } from '../lib/grpc/status.js'

/**
 * commander helper for repeatable options. It sets no default: an option left out stays undefined,
 * so the config file and env still apply (commander's defaults would count as flags).
 */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value]
}

/** The one-line reason for a failure: `error ERR_CODE: message`, never a stack trace. */
export function describeFailure(err: unknown): string {
  if (err instanceof IdentityError) return `error ${err.code}: ${err.message}`
  const code = errorCodeOf(err)
  const details = (err as { details?: string } | undefined)?.details
  if (code && details) return `error ${code}: ${details}`
  if (details) return `error: ${details}`
  return `error: ${err instanceof Error ? err.message : String(err)}`
}

/** Prints the one-line reason to stderr and exits non-zero. */
export function failAndExit(err: unknown, exitCode = 1): never {
  process.stderr.write(`${describeFailure(err)}\n`)
  process.exit(exitCode)
}

/** Prints each warning the server returned as `warning: …` on stderr (stdout stays the result). */
export function printWarnings(warnings: ReadonlyArray<string>): void {
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`)
}
