import { HumanScopes } from '../../lib/core/task/human-scopes.js'
import { HumanTaskGate } from '../consent/human-task-gate.js'
import type { ServerContext } from '../context.js'

/** Two minutes: how long a BeginTask waits for a human when the server sets nothing. */
export const DEFAULT_HUMAN_APPROVAL_TIMEOUT_MS = 120_000

/**
 * The gate of the scopes that need a human (`--human-scope`), or undefined when none do or the
 * context has no waiters to share with the admin API.
 * @throws ERR_CONFIG_INVALID for a malformed pattern
 */
export function humanGateOf(ctx: ServerContext): HumanTaskGate | undefined {
  const patterns = ctx.settings.humanScopes ?? []
  if (patterns.length === 0 || ctx.taskWaiters === undefined) return undefined
  return new HumanTaskGate({
    store: ctx.datastore.pendingRequests,
    waiters: ctx.taskWaiters,
    scopes: HumanScopes.parse(patterns),
    clock: ctx.clock,
    audit: ctx.audit,
    drops: ctx.pendingDrops ?? { count: 0, isAudited: false },
    settings: {
      humanApprovalTimeoutMs: ctx.settings.humanApprovalTimeoutMs ?? DEFAULT_HUMAN_APPROVAL_TIMEOUT_MS,
      maxPendingRequests: ctx.settings.maxPendingRequests,
    },
  })
}
