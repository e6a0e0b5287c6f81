import type { ErrorCode } from '../core/errors.js'
import type { TaskToken } from '../core/task/task-token.js'
import type { AuthMethod } from './authenticate.js'
import type { GuardDecision, RefusalStatus } from './decision.js'

/** A decision before the audit: refusals may carry the audit's extra fields, or not be audited alone. */
export type Verdict = GuardDecision & {
  readonly claimedId?: string
  readonly via?: AuthMethod
  /** The tools the request calls, when they were read. */
  readonly tools?: ReadonlyArray<string> | undefined
  /** The MCP methods the request calls, when they were read. */
  readonly mcpMethods?: ReadonlyArray<string> | undefined
  /** The request's valid task token: its id is the audit's correlation id even on a refusal. */
  readonly task?: TaskToken
  /** A throttled refusal counted into the summary of its block rather than recorded. */
  readonly isSummarised?: boolean
}

/** A refusal; `extra` adds the audit's fields (`id`, `via`, `claimedId`, `task`, …). */
export function refused(status: RefusalStatus, code: ErrorCode, reason: string, extra: object = {}): Verdict {
  return { allowed: false, status, code, reason, ...extra }
}

/** The decision without the audit-only fields (an unverified claimed ID must not reach callers). */
export function publicDecision(v: Verdict): GuardDecision {
  if (v.allowed) {
    const { id, via, path, expiresAtMs, credential, task } = v
    return {
      allowed: true,
      id,
      via,
      path,
      expiresAtMs,
      ...(credential !== undefined && { credential }),
      ...(task !== undefined && { task }),
    }
  }
  const { status, code, reason, retryAfterSeconds, id } = v
  return {
    allowed: false,
    status,
    code,
    reason,
    ...(retryAfterSeconds !== undefined && { retryAfterSeconds }),
    ...(id !== undefined && { id }),
  }
}
