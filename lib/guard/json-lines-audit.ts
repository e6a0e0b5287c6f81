import { createWriteStream } from 'node:fs'
import { type Clock, systemClock } from '../core/clock.js'
import { IdentityError } from '../core/errors.js'
import type { GatewayAudit, RequestDecided } from './decision.js'

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

/** One line of a {@link JsonLinesAudit}: the decision plus its time and event name. */
export interface AuditLine extends RequestDecided {
  /** ISO 8601 time of the decision. */
  readonly time: string
  /** `call.allowed` or `call.denied`. */
  readonly event: 'call.allowed' | 'call.denied'
}

/**
 * A ready-made audit for {@link createGuard}: one JSON object per line for every decision (`time`,
 * `event`, `outcome`, `method`, `path` — the query is never written, it may hold secrets — `address`,
 * `spiffeId` or the unverified `claimedSpiffeId`, `via`, `code`, `reason`). A file it opens is created
 * 0600 and appended to.
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
    const line: AuditLine = {
      time: new Date(this.#clock.nowMs()).toISOString(),
      event: event.outcome === 'allowed' ? 'call.allowed' : 'call.denied',
      ...event,
    }
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
