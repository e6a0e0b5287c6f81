import type { JwtBundleSource } from '../core/bundle/bundle-source.js'
import { type Clock, systemClock } from '../core/clock.js'
import type { RevocationListSource } from '../core/revocation.js'
import { type TaskToken, validateTaskTokenAt } from '../core/task/task-token.js'

/**
 * What {@link validateTaskToken} checks beyond signature and times.
 * @example
 * const opts: ValidateTaskTokenParams = { audience: 'https://mcp.example', requiredScopes: ['repo:write'] }
 */
export interface ValidateTaskTokenParams {
  /** The audience this verifier answers to: one of the token's `aud`. */
  readonly audience: string
  /** Scopes the token must all hold. */
  readonly requiredScopes?: ReadonlyArray<string>
  /** Where the time comes from; default the system clock. */
  readonly clock?: Clock
  /** Skew tolerated on `exp` and `iat`; default 30 s. */
  readonly leewayMs?: number
  /**
   * Revoked credentials, e.g. a `RevocationSource` watching the agent: a task that has ended (by
   * `EndTask` or its process's exit), whose parent has ended, or whose subject or `jti` was revoked
   * is refused with ERR_CREDENTIAL_REVOKED. Without it an ended task's token is accepted until `exp`.
   */
  readonly revocations?: RevocationListSource
}

/**
 * Validates a task token (an OAuth Transaction Token minted by Tessera, docs/tasks.md) against the
 * JWT bundle of its subject's trust domain: `typ` txntoken+jwt, the `kid`'s key, the signature,
 * `exp`/`iat`, the audience and the required scopes; with `revocations`, whether the task (or its
 * parent) has ended or its subject was revoked (docs/revocation.md).
 * @example
 * const task = await validateTaskToken(req.headers['txn-token'], jwtSource, { audience: 'https://mcp.example', requiredScopes: ['repo:write'] })
 * @throws ERR_JWT_MALFORMED, ERR_JWT_ALG_UNSUPPORTED, ERR_TASK_TOKEN_INVALID, ERR_BUNDLE_NOT_FOUND,
 *   ERR_JWT_KEY_NOT_FOUND, ERR_JWT_SIGNATURE_INVALID, ERR_JWT_EXPIRED, ERR_JWT_NOT_YET_VALID,
 *   ERR_JWT_AUDIENCE_MISMATCH, ERR_TASK_SCOPE_MISSING, ERR_CREDENTIAL_REVOKED
 */
export function validateTaskToken(
  token: string,
  bundles: JwtBundleSource,
  params: ValidateTaskTokenParams,
): Promise<TaskToken> {
  return validateTaskTokenAt(token, bundles, {
    nowMs: (params.clock ?? systemClock).nowMs(),
    audience: params.audience,
    ...(params.requiredScopes !== undefined && { requiredScopes: params.requiredScopes }),
    ...(params.leewayMs !== undefined && { leewayMs: params.leewayMs }),
    ...(params.revocations !== undefined && { revocations: params.revocations }),
  })
}
