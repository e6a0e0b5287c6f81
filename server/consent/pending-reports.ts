import type { AuditCaller, AuditLog } from '../../common/log/audit-log.js'
import type { Clock } from '../../lib/core/clock.js'
import type { PendingRequestStore } from '../datastore/ports.js'
import type { PendingSighting } from './pending-request.js'

/** Pending requests dropped since the server started (shared by the agent and admin APIs). */
export interface PendingDrops {
  count: number
  /** Set once the first drop was audited: the limit is audited once, then only counted. */
  isAudited: boolean
}

/** What {@link PendingReports} needs. */
export interface PendingReportsDeps {
  readonly store: PendingRequestStore
  readonly clock: Clock
  readonly audit: AuditLog
  readonly drops: PendingDrops
  readonly settings: { readonly pendingTtlMs: number; readonly maxPendingRequests: number }
}

/**
 * What agents report of Workload API callers that matched no entry (DESIGN §10): each sighting
 * counts toward its live request or starts a new one; drops are counted and the first audited.
 */
export class PendingReports {
  readonly #deps: PendingReportsDeps

  constructor(deps: PendingReportsDeps) {
    this.#deps = deps
  }

  /** @throws ERR_DATASTORE_IO */
  async report(
    sightings: ReadonlyArray<PendingSighting>,
    agentDropped: number,
    caller: AuditCaller,
  ): Promise<void> {
    const { settings, clock, drops } = this.#deps
    let dropped = agentDropped
    for (const s of sightings) {
      const options = {
        nowMs: clock.nowMs(),
        pendingTtlMs: settings.pendingTtlMs,
        maxRequests: settings.maxPendingRequests,
      }
      dropped += (await this.#deps.store.report(s, options)).dropped
    }
    if (dropped === 0) return
    drops.count += dropped
    if (drops.isAudited) return
    drops.isAudited = true
    const reason = `pending requests past their limit (${settings.maxPendingRequests} on the server, or the agent's): the least recently seen are dropped and counted; audited once`
    this.#deps.audit.callDenied({ method: 'ReportPending', code: 'ERR_PENDING_LIMIT', reason, caller })
  }
}
