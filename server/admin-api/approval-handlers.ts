import type { ApprovalsHandlers } from '../../common/gen/tessera/admin/v1/Approvals.js'
import type { PendingRequest as PendingRequestProto } from '../../common/gen/tessera/admin/v1/PendingRequest.js'
import type { Clock } from '../../lib/core/clock.js'
import type { ApprovalService } from '../consent/approval-service.js'
import { displayedState, type PendingRequest } from '../consent/pending-request.js'
import { fromEntry } from './convert.js'
import { type HandlerKit, unary, WarnedResponse } from './unary.js'

/** What the `Approvals` handlers need. */
export interface ApprovalHandlerDeps extends HandlerKit {
  readonly approvals: ApprovalService
  readonly clock: Clock
  readonly pendingTtlMs: number
}

const seconds = (ms: number | undefined) => (ms === undefined ? 0 : Math.floor(ms / 1000))

/** A request as the admin API shows it (times in Unix seconds, `expired` derived). */
export function fromPendingRequest(
  r: PendingRequest,
  nowMs: number,
  pendingTtlMs: number,
): PendingRequestProto {
  return {
    id: r.id,
    agent_id: r.agentId,
    uid: r.uid,
    user_name: r.userName,
    gid: r.gid,
    exe_path: r.exePath,
    sha256: r.sha256,
    cgroup: r.cgroup,
    parent_exe: r.parentExe,
    first_seen: seconds(r.firstSeenMs),
    last_seen: seconds(r.lastSeenMs),
    count: r.count,
    state: displayedState(r, nowMs, pendingTtlMs),
    decided_at: seconds(r.decidedAtMs),
    denied_until: seconds(r.deniedUntilMs),
    entry_id: r.entryId ?? '',
    change: r.previous?.change ?? '',
    previous_request_id: r.previous?.requestId ?? '',
    previous_sha256: r.previous?.sha256 ?? '',
    previous_uid: r.previous?.uid ?? 0,
    kind: r.kind,
    task_id: r.task?.taskId ?? '',
    spiffe_id: r.task?.spiffeId ?? '',
    scopes: [...(r.task?.scopes ?? [])],
    human_scopes: [...(r.task?.humanScopes ?? [])],
    audiences: [...(r.task?.audiences ?? [])],
    purpose: r.task?.purpose ?? '',
    parent_task_id: r.task?.parentTaskId ?? '',
    pid: r.task?.pid ?? 0,
    wait_until: seconds(r.waitUntilMs),
  }
}

/**
 * The `tessera.admin.v1.Approvals` service (DESIGN §10): list, show, approve, deny. An approval's
 * entry write is audited by the entry service; its warnings come back as `tessera-warning` trailers.
 */
export function createApprovalHandlers(deps: ApprovalHandlerDeps): ApprovalsHandlers {
  const { approvals } = deps
  const show = (r: PendingRequest) => fromPendingRequest(r, deps.clock.nowMs(), deps.pendingTtlMs)
  return {
    ListPendingRequests: unary(deps, 'ListPendingRequests', async (req) => ({
      requests: (await approvals.list(req.include_decided)).map(show),
      dropped: approvals.dropped,
    })),
    GetPendingRequest: unary(deps, 'GetPendingRequest', async (req) => show(await approvals.fetch(req.id))),
    ApprovePendingRequest: unary(deps, 'ApprovePendingRequest', async (req, caller) => {
      const options = {
        ...(req.spiffe_id === '' ? {} : { spiffeId: req.spiffe_id }),
        ...(req.template === '' ? {} : { template: req.template }),
        pinPath: req.pin_path,
        ...(req.valid_for === 0 ? {} : { validForMs: req.valid_for * 1000 }),
      }
      const approval = await approvals.approve(req.id, options, caller)
      const { entry } = approval
      const response = {
        request: show(approval.request),
        ...(entry !== undefined && { entry: fromEntry(entry) }),
      }
      return new WarnedResponse(response, approval.warnings)
    }),
    DenyPendingRequest: unary(deps, 'DenyPendingRequest', async (req, caller) =>
      show(await approvals.deny(req.id, caller)),
    ),
  }
}
