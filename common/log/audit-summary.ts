import { type Clock, systemClock } from '../../lib/core/clock.js'
import type {
  ApprovalApproved,
  ApprovalDenied,
  ApprovalDropped,
  ApprovalRequested,
} from './approval-events.js'
import type {
  AgentAttested,
  AgentRemoved,
  AttestationResult,
  AuditCaller,
  AuditLog,
  BundleChanged,
  CallAllowed,
  CallDenied,
  CheckpointConflict,
  EntryChanged,
  GatewayStreamCut,
  IssuanceDenied,
  RefusalSummary,
  RevocationRecorded,
  SvidIssued,
  TokenCreated,
  TokenUsed,
} from './audit-log.js'

/** Options of {@link SummarisingAuditLog}; each has a default. */
export interface AuditSummaryOptions {
  /** Length of a summary window; default 10 s. */
  readonly windowMs?: number
  /** Kinds of refusal tracked at once; past it, new kinds share one overflow summary; default 1024. */
  readonly maxKinds?: number
  readonly clock?: Clock
}

/** One kind of refusal being summarised: who, what, which code. */
interface Tracked {
  /** Refusals counted (not written) in the current window. */
  count: number
  windowEndMs: number
  /** Writes the summary line of the window, in the words of the latest refusal of this kind. */
  writeSummary: (summary: RefusalSummary) => void
}

const OVERFLOW_KIND = '*'

/** `host` of `host:port` or `[v6]:port`; anything else as it is (a peer's port changes per connection). */
function hostOf(address: string): string {
  if (address.startsWith('[')) return address.slice(0, address.indexOf(']') + 1) || address
  const colon = address.indexOf(':')
  return colon > 0 && colon === address.lastIndexOf(':') ? address.slice(0, colon) : address
}

function callerKey(caller: AuditCaller): string {
  switch (caller.kind) {
    case 'workload':
      return `w:${caller.uid}`
    case 'admin':
      return `a:${caller.uid}`
    case 'agent':
    case 'svid':
      return `s:${caller.spiffeId}`
    case 'remote':
      return `r:${hostOf(caller.address)}`
    case 'system':
      return `y:${caller.component}`
  }
}

/**
 * An {@link AuditLog} that writes every event through to `inner`, except repeated refusals
 * (DESIGN §10 "Throttling"): `call.denied` and failed `attestation.result` lines are summarised per
 * kind (the caller's uid, or its id or address; the method; the code: not the executable, which a
 * user can vary at will, so one uid makes a handful of kinds at most). The first refusal of
 * a kind is written whole; the ones that follow within the window are counted; when the window ends
 * one line is written with `summary: {count, windowMs}`, and counting goes on while they keep
 * coming. So a flood of refusals costs a few lines per window, however fast it comes. Grants are
 * never summarised. Memory is bounded by `maxKinds`.
 */
export class SummarisingAuditLog implements AuditLog {
  readonly #inner: AuditLog
  readonly #windowMs: number
  readonly #maxKinds: number
  readonly #clock: Clock
  readonly #tracked = new Map<string, Tracked>()
  readonly #timer: NodeJS.Timeout

  constructor(inner: AuditLog, options: AuditSummaryOptions = {}) {
    this.#inner = inner
    this.#windowMs = Math.max(1, options.windowMs ?? 10_000)
    this.#maxKinds = Math.max(1, options.maxKinds ?? 1024)
    this.#clock = options.clock ?? systemClock
    this.#timer = setInterval(() => this.#endDueWindows(), this.#windowMs)
    this.#timer.unref()
  }

  callDenied(e: CallDenied): void {
    const kind = `d|${callerKey(e.caller)}|${e.method}|${e.code}`
    this.#refusal(
      kind,
      () => this.#inner.callDenied(e),
      (summary) => this.#inner.callDenied({ ...e, summary }),
    )
  }

  attestationResult(e: AttestationResult): void {
    if (e.outcome === 'allowed') {
      this.#inner.attestationResult(e)
      return
    }
    const kind = `a|${callerKey(e.caller)}|${e.outcome}|${e.code ?? ''}`
    this.#refusal(
      kind,
      () => this.#inner.attestationResult(e),
      (summary) => this.#inner.attestationResult({ ...e, summary }),
    )
  }

  entryChanged(e: EntryChanged): void {
    this.#inner.entryChanged(e)
  }
  gatewayStreamCut(e: GatewayStreamCut): void {
    this.#inner.gatewayStreamCut(e)
  }
  tokenCreated(e: TokenCreated): void {
    this.#inner.tokenCreated(e)
  }
  tokenUsed(e: TokenUsed): void {
    this.#inner.tokenUsed(e)
  }
  agentAttested(e: AgentAttested): void {
    this.#inner.agentAttested(e)
  }
  agentEvicted(e: AgentRemoved): void {
    this.#inner.agentEvicted(e)
  }
  agentBanned(e: AgentRemoved): void {
    this.#inner.agentBanned(e)
  }
  svidIssued(e: SvidIssued): void {
    this.#inner.svidIssued(e)
  }
  issuanceDenied(e: IssuanceDenied): void {
    this.#inner.issuanceDenied(e)
  }
  callAllowed(e: CallAllowed): void {
    this.#inner.callAllowed(e)
  }
  revocation(e: RevocationRecorded): void {
    this.#inner.revocation(e)
  }

  bundleChanged(e: BundleChanged): void {
    this.#inner.bundleChanged(e)
  }
  checkpointConflict(e: CheckpointConflict): void {
    this.#inner.checkpointConflict(e)
  }
  approvalRequested(e: ApprovalRequested): void {
    this.#inner.approvalRequested(e)
  }
  approvalApproved(e: ApprovalApproved): void {
    this.#inner.approvalApproved(e)
  }
  approvalDenied(e: ApprovalDenied): void {
    this.#inner.approvalDenied(e)
  }
  approvalDropped(e: ApprovalDropped): void {
    this.#inner.approvalDropped(e)
  }

  /** Writes the summaries of every window still counting and stops the timer (at shutdown). */
  close(): void {
    clearInterval(this.#timer)
    for (const [kind, tracked] of this.#tracked) this.#endWindow(kind, tracked, Number.POSITIVE_INFINITY)
    this.#tracked.clear()
  }

  #refusal(kind: string, writeWhole: () => void, writeSummary: (s: RefusalSummary) => void): void {
    const nowMs = this.#clock.nowMs()
    let key = kind
    let tracked = this.#tracked.get(key)
    if (tracked !== undefined && nowMs >= tracked.windowEndMs && this.#endWindow(key, tracked, nowMs))
      tracked = undefined
    if (tracked === undefined && this.#tracked.size >= this.#maxKinds) {
      key = OVERFLOW_KIND
      tracked = this.#tracked.get(key)
    }
    if (tracked === undefined) {
      writeWhole()
      this.#tracked.set(key, { count: 0, windowEndMs: nowMs + this.#windowMs, writeSummary })
      return
    }
    tracked.count += 1
    tracked.writeSummary = writeSummary
  }

  /** Ends the window of one kind: writes its summary if it counted any; returns whether the kind was forgotten. */
  #endWindow(kind: string, tracked: Tracked, nowMs: number): boolean {
    if (tracked.count === 0) {
      this.#tracked.delete(kind)
      return true
    }
    tracked.writeSummary({ count: tracked.count, windowMs: this.#windowMs })
    tracked.count = 0
    tracked.windowEndMs = Number.isFinite(nowMs) ? nowMs + this.#windowMs : nowMs
    return false
  }

  #endDueWindows(): void {
    const nowMs = this.#clock.nowMs()
    for (const [kind, tracked] of [...this.#tracked]) {
      try {
        if (nowMs >= tracked.windowEndMs) this.#endWindow(kind, tracked, nowMs)
      } catch {
        // the audit writer failed: the count is kept and written with the next window's summary
      }
    }
  }
}
