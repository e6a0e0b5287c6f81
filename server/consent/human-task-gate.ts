import { createHash } from 'node:crypto'
import { type AuditCaller, type AuditLog, actorOf } from '../../common/log/audit-log.js'
import type { Clock } from '../../lib/core/clock.js'
import { IdentityError } from '../../lib/core/errors.js'
import type { HumanScopes } from '../../lib/core/task/human-scopes.js'
import type { PendingRequestStore } from '../datastore/ports.js'
import type { PendingDrops } from './pending-reports.js'
import type { PendingFacts, PendingTask } from './pending-request.js'
import type { TaskWaiters } from './task-waiters.js'

/** A wait bounded by the caller's deadline ends this long before it, to answer with a code in time. */
export const DEADLINE_MARGIN_MS = 1000

/** What {@link HumanTaskGate} needs. */
export interface HumanTaskGateDeps {
  readonly store: PendingRequestStore
  readonly waiters: TaskWaiters
  readonly scopes: HumanScopes
  readonly clock: Clock
  readonly audit: AuditLog
  readonly drops: PendingDrops
  readonly settings: { readonly humanApprovalTimeoutMs: number; readonly maxPendingRequests: number }
}

/** A new task (or sub-task) about to be minted, as the gate sees it. */
export interface HumanAsk {
  readonly agent: { readonly id: string; readonly caller: AuditCaller }
  /** What the agent attested of the caller. */
  readonly facts: PendingFacts
  readonly task: Omit<PendingTask, 'humanScopes'>
  /** The caller's deadline (Unix ms; Infinity: none). */
  readonly deadlineMs: number
  /** Aborts when the call is cancelled. */
  readonly signal: AbortSignal
  /** Called once the request is recorded and the wait begins (the call tells its caller). */
  readonly onWaiting?: (requestId: string) => void
}

/** A human's approval of a task. */
export interface HumanConsent {
  readonly requestId: string
  /** Who approved, as audit lines name actors (`admin:uid:1000`). */
  readonly approvedBy: string
}

/**
 * Scopes that need a human (DESIGN §11): a new task holding one is recorded as a pending request of
 * kind `task` (audited `approval.requested`, the task id as correlation id) and waits, at most the
 * server's human-approval timeout and the caller's deadline, for `tessera approval approve|deny`.
 * Never approved by itself. A denial is remembered for the deny time: the same workload asking for
 * the same SPIFFE ID and scopes is refused at once, without a new prompt.
 */
export class HumanTaskGate {
  readonly #deps: HumanTaskGateDeps

  constructor(deps: HumanTaskGateDeps) {
    this.#deps = deps
  }

  /**
   * Undefined when no scope needs a human; else the approval, once given.
   * @throws ERR_TASK_DENIED (denied now, or within an earlier denial's time), ERR_APPROVAL_TIMEOUT
   *   (no decision in time, or the caller went away), ERR_PENDING_LIMIT (too many waiting), ERR_DATASTORE_IO
   */
  async require(ask: HumanAsk): Promise<HumanConsent | undefined> {
    const { store, waiters, clock, settings } = this.#deps
    const humanScopes = this.#deps.scopes.matching(ask.task.scopes)
    if (humanScopes.length === 0) return undefined
    const waiter = `${ask.agent.id} uid ${ask.facts.uid}`
    if (!waiters.hasRoomFor(waiter))
      throw new IdentityError('ERR_PENDING_LIMIT', 'too many tasks wait for a human; retry later')
    const nowMs = clock.nowMs()
    // Answered a little before the caller's deadline, so that it reads ERR_APPROVAL_TIMEOUT, not a bare deadline.
    const waitUntilMs = Math.max(
      nowMs,
      Math.min(nowMs + settings.humanApprovalTimeoutMs, ask.deadlineMs - DEADLINE_MARGIN_MS),
    )
    const result = await store.requestTask(
      {
        agentId: ask.agent.id,
        facts: ask.facts,
        task: { ...ask.task, humanScopes },
        taskKey: taskKeyOf(ask),
      },
      { nowMs, waitUntilMs, maxRequests: settings.maxPendingRequests },
    )
    this.#dropped(result.dropped, ask.agent.caller)
    const { request } = result
    if (result.isDenied)
      throw new IdentityError(
        'ERR_TASK_DENIED',
        `a human denied this task (request ${request.id}) until ${new Date(request.deniedUntilMs ?? 0).toISOString()}`,
      )
    this.#deps.audit.approvalRequested({
      requestId: request.id,
      uid: request.uid,
      sha256: request.sha256,
      exePath: request.exePath,
      agentId: request.agentId,
      taskId: ask.task.taskId,
      spiffeId: ask.task.spiffeId,
      scopes: ask.task.scopes,
      caller: ask.agent.caller,
    })
    ask.onWaiting?.(request.id)
    const end = await waiters.wait(request.id, waiter, waitUntilMs - nowMs, ask.signal)
    if (end.outcome === 'approved') return { requestId: request.id, approvedBy: end.approvedBy }
    if (end.outcome === 'denied')
      throw new IdentityError('ERR_TASK_DENIED', `a human denied this task (request ${request.id})`)
    await store.endWait(request.id, clock.nowMs())
    throw new IdentityError(
      'ERR_APPROVAL_TIMEOUT',
      end.outcome === 'timeout'
        ? `no one approved task request ${request.id} in time`
        : `the caller stopped waiting for task request ${request.id}`,
    )
  }

  #dropped(count: number, caller: AuditCaller): void {
    const { drops } = this.#deps
    if (count === 0) return
    drops.count += count
    if (drops.isAudited) return
    drops.isAudited = true
    this.#deps.audit.approvalDropped({
      store: 'server',
      limit: this.#deps.settings.maxPendingRequests,
      count,
      caller,
    })
  }
}

/** Who approved, as the token's `tctx.approved_by` names them. */
export function approverOf(caller: AuditCaller): string {
  return actorOf(caller)
}

/** A denial is remembered for this key: the agent, the workload, the SPIFFE ID and the scopes asked for. */
function taskKeyOf(ask: HumanAsk): string {
  const { facts } = ask
  const scopes = [...ask.task.scopes].sort()
  const key = JSON.stringify([
    ask.agent.id,
    facts.uid,
    facts.sha256,
    facts.exePath,
    ask.task.spiffeId,
    scopes,
  ])
  return createHash('sha256').update(key).digest('hex')
}
