import { IdentityError } from '../core/errors.js'
import type { Matcher } from './policy-pattern.js'

/** The task a request acts for, as the policy sees it: its validated task token's scopes and purpose. */
export interface PolicyTask {
  readonly scopes: ReadonlyArray<string>
  readonly purpose: string
}

/** A rule's request-time intent conditions (DESIGN §11); each left out matches anything. */
export interface IntentConditions {
  /** Every one must be among the task token's scopes. */
  readonly scopes: ReadonlyArray<string> | undefined
  /** The task token's `tctx.purpose` must match. */
  readonly purpose: Matcher | undefined
  /** `true`: the caller proved possession of its key (WIT + WPT, or mTLS); `false`: it did not (a bearer JWT-SVID). */
  readonly proof: boolean | undefined
}

/** The intent condition a request did not meet, for the refusal's code and reason. */
export type UnmetIntent =
  | { readonly condition: 'taskToken' }
  | { readonly condition: 'scopes'; readonly missing: ReadonlyArray<string> }
  | { readonly condition: 'purpose' }
  | { readonly condition: 'proof' }

function invalid(message: string): IdentityError {
  return new IdentityError('ERR_CONFIG_INVALID', message)
}

const SCOPE = /^[\x21\x23-\x5b\x5d-\x7e]{1,256}$/

/**
 * Checks one scope of a rule: an OAuth scope token (RFC 6749 §3.3: printable ASCII without space,
 * `"` or `\`), at most 256 characters.
 * @throws ERR_CONFIG_INVALID
 * @example
 * compileScope('repo:write') // 'repo:write'
 */
export function compileScope(scope: unknown): string {
  if (typeof scope !== 'string' || !SCOPE.test(scope))
    throw invalid('must be a scope: 1 to 256 printable characters without spaces, quotes or backslashes')
  return scope
}

/**
 * Compiles a purpose pattern: the whole purpose must match, `*` standing for any run of characters
 * (`fix issue *`); letter case counts. At most 1024 characters.
 * @throws ERR_CONFIG_INVALID
 * @example
 * compilePurposePattern('fix issue *')('fix issue 12') // true
 */
export function compilePurposePattern(pattern: unknown): Matcher {
  if (typeof pattern !== 'string' || pattern.length === 0 || pattern.length > 1024)
    throw invalid('must be a pattern of 1 to 1024 characters')
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[\\^$.|?+()[\]{}]/g, '\\$&'))
    .join('[\\s\\S]*')
  const regex = new RegExp(`^${source}$`, 'u')
  return (value) => regex.test(value)
}

const MCP_METHOD = /^[A-Za-z0-9_$./-]+\*?$|^\*$/

/**
 * Compiles an MCP (JSON-RPC) method pattern: an exact method (`tools/call`, `resources/read`), or a
 * prefix ending in `*` (`resources/*`; `*` alone is every method).
 * @throws ERR_CONFIG_INVALID
 * @example
 * compileMcpMethodPattern('resources/*')('resources/read') // true
 */
export function compileMcpMethodPattern(pattern: unknown): Matcher {
  if (typeof pattern !== 'string' || pattern.length > 128 || !MCP_METHOD.test(pattern))
    throw invalid('must be a JSON-RPC method such as tools/call, or a prefix ending in *')
  if (!pattern.endsWith('*')) return (value) => value === pattern
  const prefix = pattern.slice(0, -1)
  return (value) => value.startsWith(prefix)
}

/** True when the rule has a condition on the task token. */
export function needsTask(intent: IntentConditions): boolean {
  return intent.scopes !== undefined || intent.purpose !== undefined
}

/**
 * What an allow rule's intent conditions find missing in a request, or undefined when all hold
 * (no task token fails every task condition).
 */
export function unmetIntent(
  intent: IntentConditions,
  task: PolicyTask | undefined,
  hasProof: boolean,
): UnmetIntent | undefined {
  if (intent.proof !== undefined && intent.proof !== hasProof) return { condition: 'proof' }
  if (!needsTask(intent)) return undefined
  if (task === undefined) return { condition: 'taskToken' }
  const missing = (intent.scopes ?? []).filter((s) => !task.scopes.includes(s))
  if (missing.length > 0) return { condition: 'scopes', missing }
  if (intent.purpose !== undefined && !intent.purpose(task.purpose)) return { condition: 'purpose' }
  return undefined
}

/**
 * True when a deny rule's intent conditions match: the proof as stated, and the task holding every
 * scope and a matching purpose; without a task token a task condition matches (fail closed).
 */
export function denyIntentMatches(
  intent: IntentConditions,
  task: PolicyTask | undefined,
  hasProof: boolean,
): boolean {
  if (intent.proof !== undefined && intent.proof !== hasProof) return false
  if (!needsTask(intent) || task === undefined) return true
  if (intent.scopes !== undefined && !intent.scopes.every((s) => task.scopes.includes(s))) return false
  return intent.purpose === undefined || intent.purpose(task.purpose)
}
