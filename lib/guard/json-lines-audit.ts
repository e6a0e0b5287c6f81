import { createWriteStream } from 'node:fs'
import { type Clock, systemClock } from '../core/clock.js'
import { IdentityError } from '../core/errors.js'
import type { GatewayAudit, RequestDecided } from './decision.js'
import { actorOfRequest, resourceOf } from './request-record.js'

/** Where a {@link JsonLinesAudit} writes: a file stream, `process.stdout`, or any writable of text. */
export interface AuditLineSink {
  /** Writes one line (with its newline); a throw or a stream `error` fails the audit. */
  write(line: string): unknown
}

/**
 * Options of {@link JsonLinesAudit}.
 * @example
 * const opts: JsonLinesAuditOptions = { clock: systemClock, onError: (err) => console.error(err.code) }
 */
export interface JsonLinesAuditOptions {
  /** Where the record times come from; default the system clock. */
  readonly clock?: Clock
  /**
   * Told when the file cannot be written. Without it, the audit fails closed: every later decision
   * throws ERR_AUDIT_UNAVAILABLE (so the guard refuses rather than letting unaudited requests through).
   */
  readonly onError?: (err: IdentityError) => void
}

/**
 * One line of a {@link JsonLinesAudit}: the decision under the agent-auth audit names (`actor`,
 * `action`, `resource`, `outcome` as the decision, `correlationId`, `time`), then its details.
 */
export interface AuditLine {
  /** ISO 8601 time of the decision. */
  readonly time: string
  /** `call.allowed` or `call.denied`. */
  readonly event: 'call.allowed' | 'call.denied'
  readonly outcome: RequestDecided['outcome']
  /** The verified caller's SPIFFE ID, else `remote:<address>`. */
  readonly actor: string
  /** The tool the request calls when it calls exactly one, else the canonical path. */
  readonly resource: string
  /** The HTTP method, or `WS` for a WebSocket's messages and its end. */
  readonly action: string
  readonly code: RequestDecided['code']
  readonly correlationId: string
  readonly path: string
  readonly address: string
  readonly claimedSpiffeId?: string
  readonly via?: RequestDecided['via']
  readonly reason?: string
  readonly tools?: ReadonlyArray<string>
}

/** The line of one decision at `time`. */
export function auditLineOf(event: RequestDecided, time: string): AuditLine {
  const { outcome, method, path, address, claimedSpiffeId, via, code, reason, tools, correlationId } = event
  return {
    time,
    event: outcome === 'allowed' ? 'call.allowed' : 'call.denied',
    outcome,
    actor: actorOfRequest(event),
    resource: resourceOf(event),
    action: method,
    code,
    correlationId,
    path,
    address,
    ...(claimedSpiffeId !== undefined && { claimedSpiffeId }),
    ...(via !== undefined && { via }),
    ...(reason !== undefined && { reason }),
    ...(tools !== undefined && { tools }),
  }
}

/**
 * A ready-made audit for {@link createGuard}: one JSON object per line for every decision
 * ({@link AuditLine}: `time`, `event`, `outcome`, `actor`, `resource`, `action`, `code`,
 * `correlationId`, `path` — the query is never written, it may hold secrets — `address`, the
 * unverified `claimedSpiffeId`, `via`, `reason`, `tools`). A file it opens is created 0600 and
 * appended to.
 * @example
 * const audit = JsonLinesAudit.openFile('./audit.log')
 * const guard = createGuard({ ...options, audit })
 */
export class JsonLinesAudit implements GatewayAudit {
  readonly #sink: AuditLineSink
  readonly #clock: Clock
  readonly #onError: ((err: IdentityError) => void) | undefined
  #failure: IdentityError | undefined
  #close: () => Promise<void> = async () => undefined

  /** An audit writing to `sink` (for a file, prefer {@link JsonLinesAudit.openFile}). */
  constructor(sink: AuditLineSink, options: JsonLinesAuditOptions = {}) {
    this.#sink = sink
    this.#clock = options.clock ?? systemClock
    this.#onError = options.onError
  }

  /**
   * An audit appending to the file at `path` (created with mode 0600 if missing).
   * @example
   * const audit = JsonLinesAudit.openFile('/var/log/my-tool/audit.log')
   */
  static openFile(path: string, options: JsonLinesAuditOptions = {}): JsonLinesAudit {
    const stream = createWriteStream(path, { flags: 'a', mode: 0o600 })
    const audit = new JsonLinesAudit(stream, options)
    stream.on('error', (err) => audit.#fail(err))
    audit.#close = () => new Promise((resolve) => stream.end(resolve))
    return audit
  }

  /**
   * Writes one decision as one line.
   * @throws ERR_AUDIT_UNAVAILABLE once a write failed and no `onError` was given
   */
  requestDecided(event: RequestDecided): void {
    if (this.#failure !== undefined) throw this.#failure
    const line = auditLineOf(event, new Date(this.#clock.nowMs()).toISOString())
    try {
      this.#sink.write(`${JSON.stringify(line)}\n`)
    } catch (err) {
      this.#fail(err)
      if (this.#failure !== undefined) throw this.#failure
    }
  }

  /**
   * Flushes and closes the file {@link JsonLinesAudit.openFile} opened (a sink given to the
   * constructor is left to its owner).
   * @example
   * await audit.close()
   */
  close(): Promise<void> {
    return this.#close()
  }

  #fail(cause: unknown): void {
    const err = new IdentityError('ERR_AUDIT_UNAVAILABLE', 'the audit log cannot be written', { cause })
    if (this.#onError !== undefined) this.#onError(err)
    else this.#failure = err
  }
}
