import type { AuditCaller, AuditLog } from '../../common/log/audit-log.js'
import {
  type ReportedCheckpoint,
  type VerifiedCheckpoint,
  verifyReportedCheckpoint,
} from '../../lib/audit/reported-checkpoint.js'
import type { X509BundleSource } from '../../lib/core/bundle/bundle-source.js'
import type { Clock } from '../../lib/core/clock.js'
import { IdentityError } from '../../lib/core/errors.js'
import type { SpiffeId } from '../../lib/core/spiffe-id.js'
import type { BundleService } from '../bundle/bundle-service.js'
import type { CheckpointStore, StoredCheckpoint } from '../datastore/ports.js'

/** What {@link CheckpointService} needs. */
export interface CheckpointServiceDeps {
  readonly store: CheckpointStore
  readonly bundles: Pick<BundleService, 'own'>
  readonly clock: Clock
  readonly audit: AuditLog
}

/** Who reports a checkpoint, and for which origins it may. */
export interface CheckpointReporter {
  /** The reporter's SPIFFE ID (the agent, or the server itself). */
  readonly id: SpiffeId
  readonly caller: AuditCaller
  /** Whether the reporter may speak for `origin` (its own ID, or an identity it serves). */
  mayReportFor(origin: SpiffeId): Promise<boolean>
}

/**
 * Keeps the latest signed audit checkpoint of every writer (DESIGN §10): agents report theirs and
 * their workloads' over the agent API, the server its own directly. A checkpoint is stored only when
 * its signature verifies by an SVID of the own trust domain whose ID is the origin, its reporter may
 * speak for that origin, and it does not go back (smaller than the one held, or another root at the
 * same size: audited as `audit.checkpoint.conflict`). Refusals are audited as `call.denied`.
 */
export class CheckpointService {
  readonly #deps: CheckpointServiceDeps

  constructor(deps: CheckpointServiceDeps) {
    this.#deps = deps
  }

  /**
   * Verifies and stores one reported checkpoint.
   * @throws ERR_REQUEST_INVALID, ERR_REQUEST_TOO_LARGE, ERR_AUDIT_CHECKPOINT_REFUSED,
   *   ERR_AUDIT_CHECKPOINT_CONFLICT, ERR_DATASTORE_IO
   */
  async report(reported: ReportedCheckpoint, reporter: CheckpointReporter, method: string): Promise<void> {
    let checkpoint: VerifiedCheckpoint
    try {
      checkpoint = verifyReportedCheckpoint(reported, this.#ownBundle(), this.#deps.clock.nowMs())
      if (!(await reporter.mayReportFor(checkpoint.signer)))
        throw new IdentityError(
          'ERR_AUDIT_CHECKPOINT_REFUSED',
          `${reporter.id.toString()} may not report checkpoints of ${checkpoint.origin}`,
        )
    } catch (err) {
      if (err instanceof IdentityError)
        this.#deps.audit.callDenied({ method, code: err.code, reason: err.message, caller: reporter.caller })
      throw err
    }
    const stored: StoredCheckpoint = {
      origin: checkpoint.origin,
      size: checkpoint.size,
      rootHash: checkpoint.rootHash.toString('base64'),
      note: checkpoint.note,
      reporter: reporter.id.toString(),
      receivedAtMs: this.#deps.clock.nowMs(),
    }
    const result = await this.#deps.store.record(stored)
    if (result.outcome !== 'conflict') return
    const { held } = result
    const reason =
      held.size > stored.size
        ? `a checkpoint of ${stored.size} lines, but the server holds one of ${held.size}: the log was cut, or deleted and started again`
        : `a checkpoint of ${stored.size} lines whose root differs from the one the server holds at that size: the log was rewritten`
    this.#deps.audit.checkpointConflict({
      origin: stored.origin,
      size: stored.size,
      heldSize: held.size,
      reason,
      caller: reporter.caller,
    })
    throw new IdentityError('ERR_AUDIT_CHECKPOINT_CONFLICT', `${stored.origin}: ${reason}; not stored`)
  }

  /** The latest checkpoint of `origin`, or undefined. */
  fetch(origin: string): Promise<StoredCheckpoint | undefined> {
    return this.#deps.store.fetch(origin)
  }

  /** Every origin's latest, ordered by origin. */
  list(): Promise<ReadonlyArray<StoredCheckpoint>> {
    return this.#deps.store.list()
  }

  #ownBundle(): X509BundleSource {
    const own = this.#deps.bundles.own()
    return {
      getX509BundleForTrustDomain: (td) => (td.equals(own.trustDomain) ? own.toX509Bundle() : undefined),
    }
  }
}
