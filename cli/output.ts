import { IdentityError } from '../lib/core/errors.js'
import { errorCodeOf } from '../lib/grpc/status.js'

/**
 * commander helper for repeatable options. It sets no default: an option left out stays undefined,
 * so the config file and env still apply (commander's defaults would count as flags).
 */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value]
}

/** grpc-js's connection-failure text without its empty `Resolution note:` tail. */
function withoutResolutionNote(text: string): string {
  return text.replace(/\.?\s*Resolution note:\s*$/, '').trim()
}

/**
 * The one-line reason for any failure, `error ERR_CODE: message`, never a stack trace: an
 * {@link IdentityError} keeps its code, a gRPC error the code its server attached (else
 * ERR_INTERNAL), anything else is ERR_INTERNAL (a bug: the message says what broke).
 */
export function describeFailure(err: unknown): string {
  if (err instanceof IdentityError) return `error ${err.code}: ${withoutResolutionNote(err.message)}`
  const details = (err as { details?: unknown } | undefined)?.details
  const code = errorCodeOf(err) ?? 'ERR_INTERNAL'
  if (typeof details === 'string' && details !== '') return `error ${code}: ${oneLineOf(details)}`
  const message = err instanceof Error ? err.message : String(err)
  return `error ${code}: ${oneLineOf(message) || 'an unexpected failure'}`
}

function oneLineOf(text: string): string {
  return withoutResolutionNote(text).replace(/\s*\n\s*/g, '; ')
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

/** Milliseconds as the Unix seconds every `--output json` field carries (SPIRE's convention). */
export function unixSeconds(ms: number): number {
  return Math.floor(ms / 1000)
}
