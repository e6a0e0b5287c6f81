import type { JwtBundleSource } from '../core/bundle/bundle-source.js'
import { type ErrorCode, IdentityError, isIdentityError } from '../core/errors.js'
import type { VerifiedSignatures } from '../core/jwt/verified-signatures.js'
import type { RevocationListSource } from '../core/revocation.js'
import type { SpiffeId } from '../core/spiffe-id.js'
import { type TaskToken, validateTaskTokenAt } from '../core/task/task-token.js'
import type { GuardRequest } from './decision.js'
import { TASK_TOKEN_HEADER } from './proof.js'

/** Longest `Txn-Token` header read; a longer one is refused unread. */
export const MAX_TASK_TOKEN_LENGTH = 16 * 1024

/** What checking a request's task token needs. */
export interface TaskTokenDeps {
  readonly jwtBundles: JwtBundleSource
  /** The guard's audiences: the token's `aud` must name one. */
  readonly audience: ReadonlyArray<string>
  readonly nowMs: number
  readonly revocations?: RevocationListSource | undefined
  /** Task tokens whose signature verified before: one signature check per token and key. */
  readonly signatures?: VerifiedSignatures | undefined
}

/** A request's task token: none sent, valid for this caller, or refused with a code. */
export type TaskTokenCheck =
  | { readonly kind: 'none' }
  | { readonly kind: 'valid'; readonly task: TaskToken }
  | {
      readonly kind: 'refused'
      readonly status: 401 | 403
      readonly code: ErrorCode
      readonly reason: string
    }

function refusedFor(err: IdentityError): TaskTokenCheck {
  return { kind: 'refused', status: 401, code: err.code, reason: `task token: ${err.message}` }
}

/**
 * Checks the task token a request carries in its `Txn-Token` header (DESIGN §11), for the
 * authenticated `caller`: validated against the JWT bundle of its trust domain, for one of the
 * guard's audiences, not revoked (its task, parent task, `jti` or subject: 401
 * ERR_CREDENTIAL_REVOKED once the task ended), and its `sub` must be the caller (403
 * ERR_TASK_SUBJECT_MISMATCH: a task token lent to, or copied by, another workload is useless to it).
 * @example
 * const check = await checkTaskToken(req, caller.id, { jwtBundles, audience: ['mcp'], nowMs })
 * if (check.kind === 'valid') console.log(check.task.taskId)
 */
export async function checkTaskToken(
  request: GuardRequest,
  caller: SpiffeId,
  deps: TaskTokenDeps,
): Promise<TaskTokenCheck> {
  const header = request.headers[TASK_TOKEN_HEADER]
  if (header === undefined) return { kind: 'none' }
  const token = Array.isArray(header) ? undefined : header.trim()
  if (token === undefined || token.length === 0 || token.length > MAX_TASK_TOKEN_LENGTH)
    return refusedFor(
      new IdentityError('ERR_TASK_TOKEN_INVALID', `send one token of at most ${MAX_TASK_TOKEN_LENGTH} bytes`),
    )
  let task: TaskToken
  try {
    task = await validateTaskTokenAt(token, deps.jwtBundles, {
      nowMs: deps.nowMs,
      ...(deps.revocations !== undefined && { revocations: deps.revocations }),
      ...(deps.signatures !== undefined && { signatures: deps.signatures }),
    })
  } catch (err) {
    if (!isIdentityError(err)) throw err
    return refusedFor(err)
  }
  if (!task.audiences.some((a) => deps.audience.includes(a)))
    return refusedFor(new IdentityError('ERR_JWT_AUDIENCE_MISMATCH', 'it is not for this audience'))
  if (!task.subject.equals(caller))
    return {
      kind: 'refused',
      status: 403,
      code: 'ERR_TASK_SUBJECT_MISMATCH',
      reason: `the task token is for ${task.subject}, not for the caller ${caller}`,
    }
  return { kind: 'valid', task }
}

/** The audit's `delegatedSubject` for a task: for a sub-task, the parent task it acts under. */
export function delegatedSubjectOf(task: TaskToken | undefined): string | undefined {
  if (task?.parentTaskId === undefined) return undefined
  return `${task.subject} (task ${task.parentTaskId})`
}
