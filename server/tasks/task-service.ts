import { randomUUID } from 'node:crypto'
import type { AuditCaller, AuditLog } from '../../common/log/audit-log.js'
import type { JwtBundleSource } from '../../lib/core/bundle/bundle-source.js'
import type { Clock } from '../../lib/core/clock.js'
import { IdentityError, isIdentityError } from '../../lib/core/errors.js'
import type { RegistrationEntry } from '../../lib/core/registration-entry.js'
import type { SpiffeId } from '../../lib/core/spiffe-id.js'
import {
  checkTaskRequest,
  MAX_TASK_TTL_MS,
  requireNarrowing,
  type TaskRequest,
} from '../../lib/core/task/task-request.js'
import {
  DEFAULT_TASK_LEEWAY_MS,
  MAX_TASK_ID_LENGTH,
  mintTaskToken,
  type TaskRequester,
  type TaskToken,
  validateTaskTokenAt,
} from '../../lib/core/task/task-token.js'
import type { HumanAsk, HumanConsent } from '../consent/human-task-gate.js'
import type { PendingFacts } from '../consent/pending-request.js'
import type { ServerTask, TaskStore } from './server-task.js'
import type { TaskAudiences } from './task-audiences.js'

export type { ServerTask } from './server-task.js'

/** Tasks the server remembers at most; the oldest expired ones go first, then the oldest. */
export const MAX_TASKS = 100_000
/** Longest task token accepted as a parent. */
export const MAX_PARENT_TOKEN_LENGTH = 8192

/**
 * Where an ended task is revoked so that verifiers learn of it (the revocation service of DESIGN §11,
 * whose `revoke` this is shaped after); absent, a task's end is recorded here and its token lives on
 * until it expires.
 */
export interface TaskRevocations {
  revoke(
    request: { kind: 'task'; value: string; reason: string; keepUntilMs?: number },
    caller: AuditCaller,
  ): Promise<unknown>
}

/** What {@link TaskService} needs. */
export interface TaskServiceDeps {
  /** Where tasks are kept (the datastore's, so they survive a restart). */
  readonly store: TaskStore
  readonly clock: Clock
  readonly audit: AuditLog
  /** The signing key of the trust domain's JWT authority now. */
  readonly jwtKey: () => { kid: string; privateKey: import('node:crypto').KeyObject; notAfterMs: number }
  /** The own trust domain's JWT bundle, for a parent token. */
  readonly bundles: JwtBundleSource
  /** The default JWT TTL for entries that set none. */
  readonly defaultJwtTtlMs: () => number
  readonly revocations?: TaskRevocations | undefined
  readonly limit?: number
  /** Scopes that need a human (DESIGN §11); absent: none do. */
  readonly humanGate?: { require(ask: HumanAsk): Promise<HumanConsent | undefined> } | undefined
  /** The audiences a task may name (`--task-audience`); absent: any. */
  readonly audiences?: TaskAudiences | undefined
}

/** One NewTaskToken call, checked for the agent it came from. */
export interface TaskAsk {
  readonly agent: { readonly id: SpiffeId; readonly caller: AuditCaller }
  readonly entry: RegistrationEntry
  readonly request: TaskRequest
  readonly parentToken: string
  readonly taskId: string
  readonly requester: TaskRequester
  /** The caller as its agent attested it: what a human is shown when a scope needs one. */
  readonly facts?: PendingFacts
  /** The call's deadline (Unix ms) and cancellation, bounding a wait for a human. */
  readonly deadlineMs?: number
  readonly signal?: AbortSignal
  /** Called when the task waits for a human, with the pending request's id. */
  readonly onWaiting?: (requestId: string) => void
}

/** What a sub-task is bounded by in time: its parent's id and latest expiry. */
interface ParentBound {
  readonly taskId: string
  readonly expiresAtMs: number
}

/** A task token just minted. */
export interface IssuedTask {
  readonly token: string
  readonly taskId: string
  readonly issuedAtMs: number
  readonly expiresAtMs: number
}

/**
 * The server's tasks (DESIGN §11): mints task tokens for agents (new tasks, renewals, sub-tasks that
 * only narrow their parent), remembers each task until it expires, and ends tasks through
 * {@link TaskService.revokeTask}. Every issue and refusal is audited with the task id as correlation id.
 * Tasks are kept in the datastore until their token expires, so renewals, EndTask and sub-tasks work
 * across a server restart and an ended task stays ended.
 */
export class TaskService {
  readonly #deps: TaskServiceDeps

  constructor(deps: TaskServiceDeps) {
    this.#deps = deps
  }

  /** A task by id, while remembered. */
  fetch(taskId: string): Promise<ServerTask | undefined> {
    return this.#deps.store.fetch(taskId)
  }

  /** Forgets the tasks whose tokens have expired (plus verifiers' leeway); returns how many. */
  prune(): Promise<number> {
    return this.#deps.store.prune(this.#deps.clock.nowMs() - DEFAULT_TASK_LEEWAY_MS)
  }

  /**
   * Mints a task token for `ask`; a refusal is audited (`svid.denied`, kind task) and thrown.
   * @throws ERR_REQUEST_INVALID, ERR_REQUEST_TOO_LARGE, ERR_TTL_INVALID, ERR_TASK_SCOPE_WIDENED,
   *   ERR_TASK_NOT_FOUND, ERR_TASK_ENDED, ERR_TASK_TOKEN_INVALID (a bad parent), ERR_JWT_* (a parent
   *   that does not verify or has expired), ERR_TASK_DENIED, ERR_APPROVAL_TIMEOUT, ERR_PENDING_LIMIT
   *   (a scope that needs a human: denied, not decided in time, too many waiting),
   *   ERR_TASK_AUDIENCE_UNKNOWN (an audience no `--task-audience` pattern allows)
   */
  async issue(ask: TaskAsk): Promise<IssuedTask> {
    let correlationId: string | undefined = ask.taskId || undefined
    let delegatedSubject: string | undefined
    let refused: string[] = []
    try {
      const renewing = ask.taskId === '' ? undefined : await this.#renewable(ask)
      let parent: ParentBound | undefined
      let request: TaskRequest
      if (renewing !== undefined) {
        request = { ...renewing.request, ttlMs: ask.request.ttlMs }
        checkTaskRequest(request)
        if (renewing.parentTaskId !== undefined) {
          const known = await this.#deps.store.fetch(renewing.parentTaskId)
          if (known?.endedAtMs !== undefined) throw ended(known)
          delegatedSubject = renewing.delegatedSubject
          if (known !== undefined) parent = { taskId: known.taskId, expiresAtMs: known.expiresAtMs }
        }
      } else {
        request = checkTaskRequest(ask.request)
        if (ask.parentToken !== '') {
          const given = await this.#parent(ask.parentToken)
          correlationId = given.task.taskId
          delegatedSubject = `${given.task.subject} (task ${given.task.taskId})`
          requireNarrowing(request, given.task)
          const expiresAtMs = given.known?.expiresAtMs ?? given.task.expiresAtMs
          parent = { taskId: given.task.taskId, expiresAtMs }
        }
      }
      const taskId = renewing?.taskId ?? randomUUID()
      correlationId = taskId
      refused = this.#deps.audiences?.unknown(request.audiences) ?? []
      this.#deps.audiences?.require(request.audiences)
      const approvedBy =
        renewing !== undefined
          ? renewing.approvedBy
          : (await this.#humanConsent(ask, request, taskId, parent?.taskId))?.approvedBy
      const issued = await this.#mint({
        ask,
        request,
        taskId,
        renewing,
        parent,
        delegatedSubject,
        approvedBy,
      })
      this.#deps.audit.svidIssued({
        spiffeId: ask.entry.spiffeId.toString(),
        kind: 'task',
        ttlMs: issued.expiresAtMs - issued.issuedAtMs,
        audience: request.audiences,
        scopes: request.scopes,
        entryId: ask.entry.id,
        caller: ask.agent.caller,
        correlationId: taskId,
        ...(delegatedSubject !== undefined && { delegatedSubject }),
      })
      return issued
    } catch (err) {
      const code = err instanceof IdentityError ? err.code : 'ERR_INTERNAL'
      this.#deps.audit.issuanceDenied({
        spiffeId: ask.entry.spiffeId.toString(),
        kind: 'task',
        code,
        reason: (err as Error).message,
        caller: ask.agent.caller,
        ...(correlationId !== undefined && { correlationId }),
        ...(delegatedSubject !== undefined && { delegatedSubject }),
        ...(refused.length > 0 && { audience: refused }),
      })
      throw err
    }
  }

  /**
   * Ends a task: records when and why, audits it (`call.allowed`, action EndTask, the task id as
   * correlation id) and, when a revocation service is wired, revokes it until `expiresAtMs` (plus
   * verifiers' leeway) so that every verifier refuses its token; then ends its sub-tasks the same way
   * (reason `parent-ended`). Ending an ended task again only retries a revocation that failed.
   * @throws ERR_TASK_NOT_FOUND when the task is not (or no longer) known
   */
  async revokeTask(taskId: string, expiresAtMs: number, reason: string, caller: AuditCaller): Promise<void> {
    const { store, clock } = this.#deps
    const task = await store.fetch(taskId)
    if (task === undefined) throw new IdentityError('ERR_TASK_NOT_FOUND', 'no such task')
    if (
      task.endedAtMs === undefined &&
      (await store.end(taskId, { endedAtMs: clock.nowMs(), endReason: reason }))
    )
      this.#deps.audit.callAllowed({
        method: 'EndTask',
        resource: task.spiffeId,
        caller,
        correlationId: taskId,
        ...(task.delegatedSubject !== undefined && { delegatedSubject: task.delegatedSubject }),
      })
    if (task.isRevoked !== true) {
      // Kept while a verifier could still accept the token: its expiry plus their leeway.
      const keepUntilMs = Math.max(expiresAtMs, task.expiresAtMs) + DEFAULT_TASK_LEEWAY_MS
      if (this.#deps.revocations !== undefined && keepUntilMs > clock.nowMs())
        await this.#deps.revocations.revoke(
          { kind: 'task', value: taskId, reason: `task ${task.endReason ?? reason}`, keepUntilMs },
          caller,
        )
      await store.markRevoked(taskId)
    }
    // Its sub-tasks end with it.
    for (const sub of await store.listChildren(taskId))
      if (sub.isRevoked !== true) await this.revokeTask(sub.taskId, sub.expiresAtMs, 'parent-ended', caller)
  }

  /**
   * A human withdrew the consent a task was minted with (`tessera approval deny` on its approved
   * request): the task ends (reason `consent-withdrawn`) and is revoked with its sub-tasks. A task
   * the server does not hold (yet: its BeginTask may be minting right now, the approval having just
   * reached it) is revoked by id for the longest a task token can live, so a token minted after the
   * withdrawal is refused too. False only when there is no revocation service to tell.
   * @throws ERR_REVOCATION_LIMIT, ERR_AUDIT_UNAVAILABLE, ERR_DATASTORE_IO (from the revocation)
   */
  async withdrawConsent(taskId: string, caller: AuditCaller): Promise<boolean> {
    const task = await this.#deps.store.fetch(taskId)
    if (task !== undefined) {
      await this.revokeTask(taskId, task.expiresAtMs, 'consent-withdrawn', caller)
      return true
    }
    const revocations = this.#deps.revocations
    if (revocations === undefined) return false
    const keepUntilMs = this.#deps.clock.nowMs() + MAX_TASK_TTL_MS + DEFAULT_TASK_LEEWAY_MS
    await revocations.revoke(
      { kind: 'task', value: taskId, reason: 'task consent-withdrawn', keepUntilMs },
      caller,
    )
    return true
  }

  /**
   * An agent's EndTask: only the agent that asked for the task may end it.
   * @throws ERR_REQUEST_INVALID, ERR_TASK_NOT_FOUND
   */
  async endForAgent(agent: TaskAsk['agent'], taskId: string, reason: string): Promise<void> {
    if (taskId === '' || taskId.length > MAX_TASK_ID_LENGTH)
      throw new IdentityError('ERR_REQUEST_INVALID', `a task id is 1 to ${MAX_TASK_ID_LENGTH} characters`)
    if (reason !== 'ended' && reason !== 'exited')
      throw new IdentityError('ERR_REQUEST_INVALID', 'the reason is "ended" or "exited"')
    const task = await this.#deps.store.fetch(taskId)
    if (task === undefined || task.agentId !== agent.id.toString())
      throw new IdentityError('ERR_TASK_NOT_FOUND', 'no such task of this agent')
    await this.revokeTask(taskId, task.expiresAtMs, reason, agent.caller)
  }

  /** A new task holding a scope that needs a human waits for one (undefined when none does). */
  async #humanConsent(
    ask: TaskAsk,
    request: TaskRequest,
    taskId: string,
    parentTaskId: string | undefined,
  ): Promise<HumanConsent | undefined> {
    const gate = this.#deps.humanGate
    if (gate === undefined) return undefined
    const facts: PendingFacts = ask.facts ?? {
      uid: 0,
      userName: '',
      gid: 0,
      exePath: '',
      sha256: ask.requester.exeSha256,
      cgroup: '',
      parentExe: '',
    }
    return gate.require({
      agent: { id: ask.agent.id.toString(), caller: ask.agent.caller },
      facts,
      task: {
        taskId,
        spiffeId: ask.entry.spiffeId.toString(),
        scopes: request.scopes,
        audiences: request.audiences,
        purpose: request.purpose,
        ...(parentTaskId !== undefined && { parentTaskId }),
        pid: ask.requester.pid,
      },
      deadlineMs: ask.deadlineMs ?? Number.POSITIVE_INFINITY,
      signal: ask.signal ?? new AbortController().signal,
      ...(ask.onWaiting !== undefined && { onWaiting: ask.onWaiting }),
    })
  }

  async #renewable(ask: TaskAsk): Promise<ServerTask> {
    if (ask.taskId.length > MAX_TASK_ID_LENGTH)
      throw new IdentityError('ERR_REQUEST_INVALID', `a task id is 1 to ${MAX_TASK_ID_LENGTH} characters`)
    const task = await this.#deps.store.fetch(ask.taskId)
    if (task === undefined || task.agentId !== ask.agent.id.toString() || task.entryId !== ask.entry.id)
      throw new IdentityError('ERR_TASK_NOT_FOUND', 'no such task to renew')
    if (task.endedAtMs !== undefined) throw ended(task)
    return task
  }

  async #parent(token: string): Promise<{ task: TaskToken; known?: ServerTask | undefined }> {
    if (token.length > MAX_PARENT_TOKEN_LENGTH)
      throw new IdentityError('ERR_REQUEST_TOO_LARGE', 'the parent token is too large')
    let task: TaskToken
    try {
      task = await validateTaskTokenAt(token, this.#deps.bundles, {
        nowMs: this.#deps.clock.nowMs(),
        leewayMs: 0,
      })
    } catch (err) {
      if (isIdentityError(err, 'ERR_JWT_MALFORMED'))
        throw new IdentityError('ERR_TASK_TOKEN_INVALID', 'the parent token is not a task token', {
          cause: err,
        })
      throw err
    }
    const known = await this.#deps.store.fetch(task.taskId)
    if (known?.endedAtMs !== undefined) throw ended(known)
    return { task, known }
  }

  async #mint(m: {
    ask: TaskAsk
    request: TaskRequest
    taskId: string
    renewing: ServerTask | undefined
    parent: ParentBound | undefined
    delegatedSubject: string | undefined
    approvedBy: string | undefined
  }): Promise<IssuedTask> {
    const { ask, request, taskId, renewing, parent, approvedBy } = m
    const nowMs = this.#deps.clock.nowMs()
    const key = this.#deps.jwtKey()
    const entryTtlMs = ask.entry.jwtSvidTtlMs || this.#deps.defaultJwtTtlMs()
    const parentExpiry = parent?.expiresAtMs ?? Number.POSITIVE_INFINITY
    const expiresAtMs = Math.min(
      nowMs + Math.min(request.ttlMs, MAX_TASK_TTL_MS, entryTtlMs),
      key.notAfterMs,
      parentExpiry,
    )
    const parentTaskId = renewing?.parentTaskId ?? parent?.taskId
    const token = await mintTaskToken({
      taskId,
      subject: ask.entry.spiffeId,
      audiences: request.audiences,
      scopes: request.scopes,
      requestingWorkload: ask.agent.id.toString(),
      purpose: request.purpose,
      ...(approvedBy !== undefined && { consent: 'human', approvedBy }),
      ...(parentTaskId !== undefined && { parentTaskId }),
      requester: ask.requester,
      key,
      nowMs,
      expiresAtMs,
    })
    const issuedAtMs = Math.floor(nowMs / 1000) * 1000
    const exp = Math.floor(expiresAtMs / 1000) * 1000
    if (renewing !== undefined) await this.#deps.store.renew(taskId, exp)
    else
      await this.#deps.store.create(
        {
          taskId,
          entryId: ask.entry.id,
          spiffeId: ask.entry.spiffeId.toString(),
          agentId: ask.agent.id.toString(),
          request,
          ...(parentTaskId !== undefined && { parentTaskId }),
          ...(m.delegatedSubject !== undefined && { delegatedSubject: m.delegatedSubject }),
          ...(approvedBy !== undefined && { approvedBy }),
          expiresAtMs: exp,
        },
        { limit: this.#deps.limit ?? MAX_TASKS, nowMs },
      )
    return { token, taskId, issuedAtMs, expiresAtMs: exp }
  }
}

function ended(task: ServerTask): IdentityError {
  return new IdentityError('ERR_TASK_ENDED', `task ${task.taskId} has ended (${task.endReason ?? 'ended'})`)
}
