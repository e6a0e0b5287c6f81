import { Transform, type TransformCallback } from 'node:stream'

const LF = 0x0a
const CR = 0x0d
/** Largest part of one event held back; past it, the event is passed on as it comes. */
export const SSE_EVENT_LIMIT_BYTES = 1024 * 1024

/**
 * Passes an event stream (`text/event-stream`, the HTML SSE format) on whole events only: bytes of
 * an event not yet ended by its empty line are held until it ends (an SSE client cannot use an
 * event before then anyway), so that the stream can be cut between two events, never inside one
 * ({@link SseEventGate.cut}). Lines end with CRLF, LF or CR. An event longer than `maxEventBytes` is
 * passed on as it comes; until it ends, the stream cannot be cut cleanly.
 * @example
 * const gate = new SseEventGate()
 * answer.pipe(gate).pipe(res)
 * if (!gate.cut()) res.destroy() // else res ends after the last whole event
 */
export class SseEventGate extends Transform {
  readonly #maxEventBytes: number
  #held: Buffer[] = []
  #heldBytes = 0
  /** The last byte ended a line (the stream's start counts as one). */
  #isAtLineStart = true
  /** The last byte was a CR: an LF after it belongs to the same line end. */
  #isAfterCr = false
  /** Part of an event was passed on before its end. */
  #isMidEvent = false
  #isCut = false

  constructor(options: { maxEventBytes?: number } = {}) {
    super()
    this.#maxEventBytes = options.maxEventBytes ?? SSE_EVENT_LIMIT_BYTES
  }

  /** The offset just past the last event end in `chunk`, or -1; moves the line state over it. */
  #lastEventEnd(chunk: Buffer): number {
    let end = -1
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]
      if (byte === LF && this.#isAfterCr) {
        this.#isAfterCr = false
        if (end === i) end = i + 1 // the LF of a CRLF that ended the event goes with it
      } else if (byte === LF || byte === CR) {
        if (this.#isAtLineStart) end = i + 1
        this.#isAtLineStart = true
        this.#isAfterCr = byte === CR
      } else {
        this.#isAtLineStart = false
        this.#isAfterCr = false
      }
    }
    return end
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (!this.#isCut) this.#take(chunk)
    done()
  }

  #take(chunk: Buffer): void {
    let rest = chunk
    const end = this.#lastEventEnd(chunk)
    if (end >= 0) {
      this.#pushHeld(chunk.subarray(0, end))
      this.#isMidEvent = false
      rest = chunk.subarray(end)
    }
    if (rest.length === 0) return
    if (this.#isMidEvent || this.#heldBytes + rest.length > this.#maxEventBytes) {
      this.#pushHeld(rest)
      this.#isMidEvent = true
      return
    }
    this.#held.push(rest)
    this.#heldBytes += rest.length
  }

  /** Passes on what is held, then `tail`. */
  #pushHeld(tail: Buffer): void {
    this.push(Buffer.concat([...this.#held, tail]))
    this.#held = []
    this.#heldBytes = 0
  }

  override _flush(done: TransformCallback): void {
    // The upstream ended its stream: what it sent last goes on as it is (a cut drops it).
    if (!this.#isCut && this.#heldBytes > 0) this.push(Buffer.concat(this.#held))
    this.#held = []
    done()
  }

  /**
   * Ends the stream after the last whole event, dropping the part of an event held back; call it
   * once nothing more is written to it. Returns false, and ends nothing, when part of an event was
   * already passed on (an event over the limit): the stream cannot be ended cleanly then.
   */
  cut(): boolean {
    if (this.#isMidEvent) return false
    this.#isCut = true
    this.#held = []
    this.#heldBytes = 0
    this.end()
    return true
  }
}
