import type { GatewayAudit, RequestDecided, StreamCut } from '../../lib/guard/guard.js'
import { resourceOf } from '../../lib/guard/request-record.js'
import type { AuditCaller } from '../log/audit-log.js'
import { PinoAuditLog } from '../log/pino-audit-log.js'

function callerOf(event: RequestDecided): AuditCaller {
  return event.spiffeId === undefined
    ? { kind: 'remote', address: event.address }
    : { kind: 'svid', spiffeId: event.spiffeId, address: event.address }
}

/**
 * The gateway's audit log: the process's {@link PinoAuditLog} (JSON lines, never filtered by level)
 * plus one record per request decision: `call.denied` or `call.allowed`, whose action is the HTTP
 * method (`WS` for a WebSocket's messages), whose resource is the tool called (when exactly one)
 * or the canonical path (the query is never written: it may hold secrets), whose actor is the
 * verified SPIFFE ID, or the peer address when the caller did not authenticate, and whose
 * correlation id is the one passed to the upstream (`X-Request-Id`): the task id when the request
 * carried a valid task token, whose parent task (for a sub-task) is the `delegatedSubject`; and a
 * `gateway.stream.cut` line for a reply cut because its credential was revoked or expired.
 * @example
 * const audit = PinoGatewayAudit.open('/var/log/tessera/gateway-audit.log')
 * const guard = createGuard({ ...options, audit })
 */
export class PinoGatewayAudit extends PinoAuditLog implements GatewayAudit {
  requestDecided(event: RequestDecided): void {
    const { method, path, via, correlationId } = event
    const call = {
      method,
      resource: resourceOf(event),
      path,
      ...(event.tools !== undefined && { tools: event.tools }),
      ...(event.mcpMethods !== undefined && { mcpMethods: event.mcpMethods }),
      via,
      caller: callerOf(event),
      correlationId,
      ...(event.delegatedSubject !== undefined && { delegatedSubject: event.delegatedSubject }),
    }
    if (event.outcome === 'denied' && event.code !== 'OK') {
      const claimed =
        event.claimedSpiffeId === undefined ? '' : ` (the token claimed ${event.claimedSpiffeId})`
      const reason = `${event.reason ?? 'refused'}${claimed}`
      this.callDenied({ ...call, code: event.code, reason })
      return
    }
    this.callAllowed(call)
  }

  /** A streamed reply cut on revocation or expiry: one `gateway.stream.cut` line (resource: the path). */
  streamCut(event: StreamCut): void {
    const { spiffeId, address, ...rest } = event
    this.gatewayStreamCut({ ...rest, caller: { kind: 'svid', spiffeId, address } })
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
