import type { AuditCaller, AuditLog } from '../../common/log/audit-log.js'
import type { Clock } from '../../lib/core/clock.js'
import type { PendingRequestStore } from '../datastore/ports.js'
import type { PendingRequest, PendingSighting } from './pending-request.js'

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
 * counts toward its live request or starts a new one (audited once, `approval.requested`); drops
 * are counted and the first audited (`approval.dropped`).
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
      const result = await this.#deps.store.report(s, options)
      dropped += result.dropped
      if (result.isNew) this.#requested(result.request, caller)
    }
    if (dropped === 0) return
    drops.count += dropped
    if (drops.isAudited) return
    drops.isAudited = true
    const limit = settings.maxPendingRequests
    this.#deps.audit.approvalDropped({ store: 'server', limit, count: dropped, caller })
  }

  /** A new request is audited once; its later sightings only count toward it. */
  #requested(r: PendingRequest, caller: AuditCaller): void {
    const { id: requestId, uid, sha256, exePath, agentId, previous } = r
    this.#deps.audit.approvalRequested({
      requestId,
      uid,
      sha256,
      exePath,
      agentId,
      ...(previous !== undefined && { change: previous.change, previousRequestId: previous.requestId }),
      caller,
    })
  }
}
