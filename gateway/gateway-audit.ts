import type { AuditCaller } from '../common/log/audit-log.js'
import { PinoAuditLog } from '../common/log/pino-audit-log.js'
import type { GatewayAudit, RequestDecided } from '../lib/guard/guard.js'

function callerOf(event: RequestDecided): AuditCaller {
  return event.spiffeId === undefined
    ? { kind: 'remote', address: event.address }
    : { kind: 'svid', spiffeId: event.spiffeId, address: event.address }
}

/**
 * The gateway's audit log: the process's {@link PinoAuditLog} (JSON lines, never filtered by level)
 * plus one record per request decision. A denial is a `call.denied` record whose subject is
 * `METHOD /path` (the query is never written: it may hold secrets) and whose caller is the verified
 * SPIFFE ID, or the peer address when the caller did not authenticate; an allowance is a
 * `call.allowed` record of the same shape.
 * @example
 * const audit = PinoGatewayAudit.open('/var/log/tessera/gateway-audit.log')
 * const guard = createGuard({ ...options, audit })
 */
export class PinoGatewayAudit extends PinoAuditLog implements GatewayAudit {
  requestDecided(event: RequestDecided): void {
    const subject = `${event.method} ${event.path}`
    if (event.outcome === 'denied' && event.code !== 'OK') {
      const claimed =
        event.claimedSpiffeId === undefined ? '' : ` (the token claimed ${event.claimedSpiffeId})`
      const reason = `${event.reason ?? 'refused'}${claimed}`
      this.callDenied({ method: subject, code: event.code, reason, caller: callerOf(event) })
      return
    }
    this.callAllowed({ method: subject, via: event.via, caller: callerOf(event) })
  }
}

/**
 * Keeps every decision in memory, in order: for tests, and for tools that show recent decisions.
 * @example
 * const audit = new MemoryGatewayAudit()
 * await createGuard({ ...options, audit }).check(req)
 * audit.events[0]?.outcome // 'denied'
 */
export class MemoryGatewayAudit implements GatewayAudit {
  readonly #events: RequestDecided[] = []

  requestDecided(event: RequestDecided): void {
    this.#events.push(Object.freeze({ ...event }))
  }

  /** Every decision so far, oldest first. */
  get events(): ReadonlyArray<RequestDecided> {
    return this.#events
  }
}
