import { type AuditCaller, type AuditLog, actorOf } from '../../common/log/audit-log.js'
import type { Clock } from '../../lib/core/clock.js'
import { IdentityError, isIdentityError } from '../../lib/core/errors.js'
import type { EntryFields, RegistrationEntry } from '../../lib/core/registration-entry.js'
import { Selector } from '../../lib/core/selector.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import type { TrustDomain } from '../../lib/core/trust-domain.js'
import { entryWarnings, refuseReservedId } from '../admin-api/entry-policy.js'
import type { PendingRequestStore } from '../datastore/ports.js'
import type { EntryService } from '../registration/entry-service.js'
import { expandIdTemplate } from './id-template.js'
import type { PendingDrops } from './pending-reports.js'
import { isStale, type PendingRequest } from './pending-request.js'
import type { TaskWaiters } from './task-waiters.js'

/** What the approval service needs. */
export interface ApprovalServiceDeps {
  readonly store: PendingRequestStore
  readonly entries: EntryService
  readonly trustDomain: TrustDomain
  readonly clock: Clock
  readonly audit: AuditLog
  readonly settings: {
    readonly pendingTtlMs: number
    readonly denyTtlMs: number
  }
  readonly drops: PendingDrops
  /** BeginTask calls waiting for a human (task requests); absent: task requests cannot be decided. */
  readonly taskWaiters?: TaskWaiters | undefined
  /** Where an approved task is ended when its approval is withdrawn (the server's task service). */
  readonly tasks?: { withdrawConsent(taskId: string, caller: AuditCaller): Promise<boolean> } | undefined
}

/** How an admin approves a request. */
export interface ApprovalOptions {
  /** Exactly one of `spiffeId` and `template`. */
  readonly spiffeId?: string
  readonly template?: string
  /** Also pin `unix:path`. */
  readonly pinPath: boolean
  /** How long the entry lasts; undefined: no expiry. */
  readonly validForMs?: number
}

/** An approval's outcome: the request, the entry it created (none for a task) and the admin's warnings. */
export interface Approval {
  readonly request: PendingRequest
  readonly entry: RegistrationEntry | undefined
  readonly warnings: ReadonlyArray<string>
}

/** Longest `validForMs` accepted (10 years). */
const MAX_VALID_FOR_MS = 10 * 365 * 86_400_000

/**
 * Pending requests and the admin's decisions on them (DESIGN §10). Nothing here approves anything
 * by itself: an entry is only ever made by {@link ApprovalService.approve}, an admin's call.
 */
export class ApprovalService {
  readonly #deps: ApprovalServiceDeps

  constructor(deps: ApprovalServiceDeps) {
    this.#deps = deps
  }

  /** Requests dropped since the server started, here and as agents reported. */
  get dropped(): number {
    return this.#deps.drops.count
  }

  /** Every request kept, the most recently seen first; decided ones only when asked. */
  async list(includeDecided: boolean): Promise<ReadonlyArray<PendingRequest>> {
    const all = await this.#deps.store.list()
    if (includeDecided) return all
    const nowMs = this.#deps.clock.nowMs()
    return all.filter((r) => r.state === 'pending' && !isStale(r, nowMs, this.#deps.settings.pendingTtlMs))
  }

  /** @throws ERR_PENDING_NOT_FOUND */
  async fetch(id: string): Promise<PendingRequest> {
    const found = id === '' ? undefined : await this.#deps.store.fetch(id)
    if (found === undefined) throw new IdentityError('ERR_PENDING_NOT_FOUND', `no pending request ${id}`)
    return found
  }

  /**
   * Approves a pending request: an entry for the SPIFFE ID given (or the template's), pinned to the
   * request's uid and sha256 (and path), parented to the reporting agent, expiring after `validForMs`.
   * Nothing is created when any check fails.
   * @throws ERR_PENDING_NOT_FOUND, ERR_PENDING_EXPIRED, ERR_PENDING_DECIDED, ERR_ID_INVALID,
   *   ERR_TEMPLATE_INVALID, ERR_ENTRY_ID_RESERVED, ERR_REQUEST_INVALID, ERR_ENTRY_INVALID, ERR_ENTRY_EXISTS
   */
  async approve(id: string, options: ApprovalOptions, caller: AuditCaller): Promise<Approval> {
    const request = await this.#undecided(id)
    if (request.kind === 'task') return this.#approveTask(request, options, caller)
    const nowMs = this.#deps.clock.nowMs()
    const fields = this.#entryFields(request, options, nowMs)
    refuseReservedId(fields)
    const warnings = await entryWarnings(fields)
    const claimed = await this.#claim(id, { state: 'approved', nowMs })
    // The approval's line is written with the entry's, before its COMMIT: both or neither.
    const alsoAudit = (entry: RegistrationEntry) =>
      this.#deps.audit.approvalApproved({
        requestId: id,
        entryId: entry.id,
        spiffeId: entry.spiffeId.toString(),
        exePath: request.exePath,
        ...(entry.expiresAtMs !== undefined && { expiresAt: Math.floor(entry.expiresAtMs / 1000) }),
        caller,
      })
    try {
      const entry = await this.#deps.entries.create(fields, caller, {
        warnings,
        correlationId: id,
        alsoAudit,
      })
      await this.#deps.store.setEntry(id, entry.id)
      return { request: { ...claimed, entryId: entry.id }, entry, warnings }
    } catch (err) {
      await this.#deps.store.reopen(id)
      throw err
    }
  }

  /**
   * Denies a pending request: the same (uid, sha256, path) from the same agent counts toward it, and
   * is no new request, until the deny time has passed. Denying an approved request withdraws the
   * consent: the entry made for it is deleted, which revokes what was issued from it (for a task
   * request: the task it approved is ended and revoked, with its sub-tasks), and the request is
   * denied as above.
   * @throws ERR_PENDING_NOT_FOUND, ERR_PENDING_EXPIRED, ERR_PENDING_DECIDED (denied already)
   */
  async deny(id: string, caller: AuditCaller): Promise<PendingRequest> {
    const known = await this.fetch(id)
    if (known.state === 'approved') return this.#withdraw(known, caller)
    const request = await this.#undecided(id)
    const nowMs = this.#deps.clock.nowMs()
    const deniedUntilMs = nowMs + this.#deps.settings.denyTtlMs
    const denied = await this.#claim(id, { state: 'denied', nowMs, deniedUntilMs })
    const deniedUntil = Math.floor(deniedUntilMs / 1000)
    const taskId = request.task?.taskId
    this.#deps.audit.approvalDenied({
      requestId: id,
      exePath: request.exePath,
      deniedUntil,
      ...(taskId !== undefined && { taskId }),
      caller,
    })
    if (request.kind === 'task') this.#deps.taskWaiters?.decide(id, { outcome: 'denied' })
    return denied
  }

  /**
   * Approves a task request: its waiting BeginTask mints the token (consent `human`, approved by
   * `caller`); no entry is made. Refused when the BeginTask no longer waits.
   */
  async #approveTask(
    request: PendingRequest,
    options: ApprovalOptions,
    caller: AuditCaller,
  ): Promise<Approval> {
    const { spiffeId, template, pinPath, validForMs } = options
    if (spiffeId !== undefined || template !== undefined || pinPath || validForMs !== undefined)
      throw new IdentityError(
        'ERR_REQUEST_INVALID',
        'a task request is approved as it is: no SPIFFE ID, template, path pin or duration',
      )
    const waiters = this.#deps.taskWaiters
    const gone = async () => {
      await this.#deps.store.endWait(request.id, this.#deps.clock.nowMs())
      return new IdentityError(
        'ERR_PENDING_EXPIRED',
        `task request ${request.id} no longer waits; the workload must ask again`,
      )
    }
    if (waiters === undefined || !waiters.isWaiting(request.id)) throw await gone()
    const claimed = await this.#claim(request.id, { state: 'approved', nowMs: this.#deps.clock.nowMs() })
    if (!waiters.decide(request.id, { outcome: 'approved', approvedBy: actorOf(caller) })) {
      await this.#deps.store.reopen(request.id)
      throw await gone()
    }
    this.#deps.audit.approvalApproved({
      requestId: request.id,
      spiffeId: request.task?.spiffeId ?? '',
      exePath: request.exePath,
      ...(request.task !== undefined && { taskId: request.task.taskId }),
      caller,
    })
    return { request: claimed, entry: undefined, warnings: [] }
  }

  /**
   * Consent withdrawn: the approval's entry deleted (its credentials revoked) or its task ended and
   * revoked, the request denied.
   */
  async #withdraw(approved: PendingRequest, caller: AuditCaller): Promise<PendingRequest> {
    const taskId = approved.kind === 'task' ? approved.task?.taskId : undefined
    let isTaskWithdrawn = false
    if (taskId !== undefined) {
      const tasks = this.#deps.tasks
      if (tasks === undefined)
        throw new IdentityError(
          'ERR_PENDING_DECIDED',
          `task request ${approved.id} was approved; end the task`,
        )
      isTaskWithdrawn = await tasks.withdrawConsent(taskId, caller)
    }
    if (approved.entryId !== undefined) {
      try {
        await this.#deps.entries.delete(approved.entryId, caller)
      } catch (err) {
        // Deleted already (by an admin, or pruned at its expiry): the credentials went with it.
        if (!isIdentityError(err, 'ERR_ENTRY_NOT_FOUND')) throw err
      }
    }
    const nowMs = this.#deps.clock.nowMs()
    const deniedUntilMs = nowMs + this.#deps.settings.denyTtlMs
    const denied = await this.#deps.store.withdraw(approved.id, { nowMs, deniedUntilMs })
    if (denied === undefined)
      throw new IdentityError('ERR_PENDING_DECIDED', `pending request ${approved.id} was decided meanwhile`)
    this.#deps.audit.approvalDenied({
      requestId: approved.id,
      exePath: approved.exePath,
      deniedUntil: Math.floor(deniedUntilMs / 1000),
      ...(approved.entryId !== undefined && { withdrawnEntryId: approved.entryId }),
      ...(taskId !== undefined && { taskId }),
      ...(isTaskWithdrawn && taskId !== undefined && { withdrawnTaskId: taskId }),
      caller,
    })
    return denied
  }

  /** The request, still pending and not stale. */
  async #undecided(id: string): Promise<PendingRequest> {
    const request = await this.fetch(id)
    if (request.state !== 'pending')
      throw new IdentityError('ERR_PENDING_DECIDED', `pending request ${id} was already ${request.state}`)
    if (isStale(request, this.#deps.clock.nowMs(), this.#deps.settings.pendingTtlMs))
      throw new IdentityError(
        'ERR_PENDING_EXPIRED',
        `pending request ${id} has expired; the workload must ask again`,
      )
    return request
  }

  /** Decides the request atomically; one that was decided or went stale meanwhile is refused. */
  async #claim(
    id: string,
    d: { state: 'approved' | 'denied'; nowMs: number; deniedUntilMs?: number },
  ): Promise<PendingRequest> {
    const seenAfterMs = d.nowMs - this.#deps.settings.pendingTtlMs
    const decided = await this.#deps.store.decide(id, { ...d, seenAfterMs })
    if (decided !== undefined) return decided
    await this.#undecided(id) // throws the reason
    throw new IdentityError('ERR_PENDING_DECIDED', `pending request ${id} was decided meanwhile`)
  }

  #entryFields(request: PendingRequest, options: ApprovalOptions, nowMs: number): EntryFields {
    const { spiffeId, template, pinPath, validForMs } = options
    if ((spiffeId === undefined) === (template === undefined))
      throw new IdentityError('ERR_REQUEST_INVALID', 'give exactly one of a SPIFFE ID and a template')
    const id =
      spiffeId !== undefined
        ? SpiffeId.parse(spiffeId)
        : expandIdTemplate(template ?? '', request, this.#deps.trustDomain)
    if (
      validForMs !== undefined &&
      (!Number.isSafeInteger(validForMs) || validForMs <= 0 || validForMs > MAX_VALID_FOR_MS)
    )
      throw new IdentityError('ERR_REQUEST_INVALID', 'an approval lasts from 1 second to 10 years')
    const selectors = [
      Selector.from('unix', `uid:${request.uid}`),
      Selector.from('unix', `sha256:${request.sha256}`),
    ]
    if (pinPath) selectors.push(Selector.from('unix', `path:${request.exePath}`))
    return {
      spiffeId: id,
      parentId: SpiffeId.parse(request.agentId),
      selectors,
      x509SvidTtlMs: 0,
      jwtSvidTtlMs: 0,
      dnsNames: [],
      hint: '',
      admin: false,
      federatesWith: [],
      expiresAtMs: validForMs === undefined ? undefined : nowMs + validForMs,
    }
  }
}
