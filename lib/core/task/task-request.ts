import { IdentityError } from '../errors.js'

/** The longest a task token may live: 15 minutes (DESIGN §11), whatever the entry's JWT TTL. */
export const MAX_TASK_TTL_MS = 15 * 60_000
/** Most scopes and audiences one task may name. */
export const MAX_TASK_SCOPES = 32
export const MAX_TASK_AUDIENCES = 16
/** Longest scope, audience and purpose. */
export const MAX_SCOPE_LENGTH = 128
export const MAX_TASK_AUDIENCE_LENGTH = 512
export const MAX_PURPOSE_LENGTH = 256

/** What a workload asks for when it begins a task. */
export interface TaskRequest {
  readonly audiences: ReadonlyArray<string>
  readonly scopes: ReadonlyArray<string>
  readonly purpose: string
  /** The wanted lifetime; capped by {@link MAX_TASK_TTL_MS}, the entry's JWT TTL and a parent's expiry. */
  readonly ttlMs: number
}

/** An OAuth scope-token (RFC 6749 §3.3): printable ASCII without space, `"` or `\`. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/
/** A purpose is text for people: no control characters. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: they are what is refused
const CONTROL = /[\u0000-\u001f\u007f]/

function invalid(message: string): IdentityError {
  return new IdentityError('ERR_REQUEST_INVALID', message)
}

function tooLarge(message: string): IdentityError {
  return new IdentityError('ERR_REQUEST_TOO_LARGE', message)
}

/**
 * Checks a task request and returns it with scopes and audiences deduplicated (in their given order).
 * @throws ERR_REQUEST_INVALID (no scope, no audience, an empty or malformed one, a bad purpose),
 *   ERR_REQUEST_TOO_LARGE (over the counts or lengths above), ERR_TTL_INVALID (not a positive
 *   whole number of seconds, or over {@link MAX_TASK_TTL_MS})
 */
export function checkTaskRequest(request: TaskRequest): TaskRequest {
  const scopes = checkList(request.scopes, 'scope', MAX_TASK_SCOPES, MAX_SCOPE_LENGTH)
  for (const s of scopes) if (!SCOPE_TOKEN.test(s)) throw invalid(`scope "${s}" is not an OAuth scope token`)
  const audiences = checkList(request.audiences, 'audience', MAX_TASK_AUDIENCES, MAX_TASK_AUDIENCE_LENGTH)
  for (const a of audiences)
    if (CONTROL.test(a) || a.includes(' ')) throw invalid('an audience has spaces or control characters')
  const purpose = request.purpose
  if (typeof purpose !== 'string' || purpose.trim().length === 0) throw invalid('a task needs a purpose')
  if (purpose.length > MAX_PURPOSE_LENGTH)
    throw tooLarge(`a purpose is at most ${MAX_PURPOSE_LENGTH} characters`)
  if (CONTROL.test(purpose)) throw invalid('a purpose must not hold control characters')
  const ttlMs = request.ttlMs
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1000 || ttlMs % 1000 !== 0)
    throw new IdentityError('ERR_TTL_INVALID', 'a task TTL is a whole number of seconds, at least one')
  if (ttlMs > MAX_TASK_TTL_MS)
    throw new IdentityError('ERR_TTL_INVALID', `a task lives at most ${MAX_TASK_TTL_MS / 60_000} minutes`)
  return { scopes, audiences, purpose, ttlMs }
}

function checkList(values: unknown, what: string, max: number, maxLength: number): string[] {
  if (!Array.isArray(values) || values.length === 0) throw invalid(`a task needs at least one ${what}`)
  if (values.length > max) throw tooLarge(`a task names at most ${max} ${what}s`)
  const out: string[] = []
  for (const v of values) {
    if (typeof v !== 'string' || v.length === 0) throw invalid(`every ${what} must be a non-empty string`)
    if (v.length > maxLength) throw tooLarge(`every ${what} is at most ${maxLength} characters`)
    if (!out.includes(v)) out.push(v)
  }
  return out
}

/** What a sub-task's parent allows: its scopes, audiences and expiry. */
export interface TaskBounds {
  readonly scopes: ReadonlyArray<string>
  readonly audiences: ReadonlyArray<string>
  readonly expiresAtMs: number
}

/**
 * Checks that a sub-task only narrows its parent: every scope and audience it asks for is one of the
 * parent's. Its expiry is capped by the parent's where it is minted.
 * @throws ERR_TASK_SCOPE_WIDENED naming what the parent does not hold
 */
export function requireNarrowing(request: TaskRequest, parent: TaskBounds): void {
  const scopes = request.scopes.filter((s) => !parent.scopes.includes(s))
  if (scopes.length > 0)
    throw new IdentityError(
      'ERR_TASK_SCOPE_WIDENED',
      `the parent task does not hold scope ${scopes.join(', ')}`,
    )
  const audiences = request.audiences.filter((a) => !parent.audiences.includes(a))
  if (audiences.length > 0)
    throw new IdentityError(
      'ERR_TASK_SCOPE_WIDENED',
      `the parent task is not for audience ${audiences.join(', ')}`,
    )
}

/** The lifetime asked for when none is given: 10 minutes. */
export const DEFAULT_TASK_TTL_MS = 10 * 60_000
