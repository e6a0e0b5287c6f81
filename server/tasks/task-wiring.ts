import { humanGateOf } from '../agent-api/human-gate-wiring.js'
import type { ServerContext } from '../context.js'
import { TaskAudiences } from './task-audiences.js'
import { TaskService } from './task-service.js'

/**
 * The server's one task service over its context: tasks in the datastore, tokens signed with the
 * active JWT key, ends revoked through the revocation service, the `--human-scope` gate and the
 * `--task-audience` patterns.
 * @throws ERR_CONFIG_INVALID for a malformed human scope or task audience pattern
 */
export function taskServiceOf(ctx: ServerContext): TaskService {
  return new TaskService({
    store: ctx.datastore.tasks,
    clock: ctx.clock,
    audit: ctx.audit,
    jwtKey: () => ctx.rotator.active().jwtKey,
    bundles: {
      getJwtBundleForTrustDomain: (td) => {
        const own = ctx.bundles.own()
        return td.equals(own.trustDomain) ? own.toJwtBundle() : undefined
      },
    },
    defaultJwtTtlMs: () => ctx.settings.defaultJwtSvidTtlMs,
    revocations: ctx.revocations,
    humanGate: humanGateOf(ctx),
    audiences: TaskAudiences.parse(ctx.settings.taskAudiences ?? [], ctx.trustDomain),
  })
}
