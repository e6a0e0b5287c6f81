import { randomBytes } from 'node:crypto'

/** RFC 6455 opcodes the relay knows; anything else is a protocol error. */
export const OPCODE = Object.freeze({
  continuation: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa,
})

/** The header of one frame. */
export interface FrameHead {
  readonly fin: boolean
  /** RSV1–3 as a number (0 without extensions). */
  readonly rsv: number
  readonly opcode: number
  /** The masking key, for a masked (client) frame. */
  readonly mask: Buffer | undefined
  readonly length: number
}

/** What a {@link FrameScanner} reports, in stream order. `raw` is exactly the bytes that carried it. */
export interface FrameSink {
  head(head: FrameHead, raw: Buffer): void
  /** A piece of the payload: `data` unmasked, `raw` as it came. */
  payload(data: Buffer, raw: Buffer): void
  end(head: FrameHead): void
}

/** Thrown by {@link FrameScanner.push} for bytes that are not a frame header. */
export class FrameError extends Error {}

const MAX_HEADER_BYTES = 14

function parseHead(bytes: Buffer): { head: FrameHead; size: number } | undefined {
  if (bytes.length < 2) return undefined
  const b0 = bytes[0] ?? 0
  const b1 = bytes[1] ?? 0
  const len7 = b1 & 0x7f
  const lengthBytes = len7 === 126 ? 2 : len7 === 127 ? 8 : 0
  const masked = (b1 & 0x80) !== 0
  const size = 2 + lengthBytes + (masked ? 4 : 0)
  if (bytes.length < size) return undefined
  let length = len7
  if (len7 === 126) length = bytes.readUInt16BE(2)
  if (len7 === 127) {
    const big = bytes.readBigUInt64BE(2)
    if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new FrameError('frame length out of range')
    length = Number(big)
  }
  const mask = masked ? Buffer.from(bytes.subarray(2 + lengthBytes, size)) : undefined
  const head = { fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 0x7, opcode: b0 & 0x0f, mask, length }
  return { head, size }
}

/**
 * Reads one direction of a WebSocket connection incrementally and reports frame headers, payload
 * pieces (unmasked) and frame ends, each with the raw bytes it came in, so that the caller can
 * forward exactly what was sent, hold it back, or stop at a frame boundary.
 * @example
 * const scanner = new FrameScanner({ head: (h, raw) => out.write(raw), payload: (_d, raw) => out.write(raw), end: () => {} })
 * socket.on('data', (chunk) => scanner.push(chunk))
 */
export class FrameScanner {
  readonly #sink: FrameSink
  #pending: Buffer = Buffer.alloc(0)
  #head: FrameHead | undefined
  #remaining = 0
  #offset = 0

  constructor(sink: FrameSink) {
    this.#sink = sink
  }

  /** True between frames: nothing of a frame has been seen without its end. */
  get isAtBoundary(): boolean {
    return this.#head === undefined && this.#pending.length === 0
  }

  /**
   * Feeds bytes.
   * @throws FrameError on a header that cannot be read
   */
  push(chunk: Buffer): void {
    let rest = chunk
    while (rest.length > 0) {
      if (this.#head === undefined) rest = this.#readHead(rest)
      else rest = this.#readPayload(rest)
    }
  }

  #readHead(chunk: Buffer): Buffer {
    const bytes = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk])
    const parsed = parseHead(bytes.subarray(0, MAX_HEADER_BYTES))
    if (parsed === undefined) {
      this.#pending = Buffer.from(bytes)
      return Buffer.alloc(0)
    }
    this.#pending = Buffer.alloc(0)
    this.#head = parsed.head
    this.#remaining = parsed.head.length
    this.#offset = 0
    this.#sink.head(parsed.head, bytes.subarray(0, parsed.size))
    if (this.#remaining === 0) this.#endFrame()
    return bytes.subarray(parsed.size)
  }

  #readPayload(chunk: Buffer): Buffer {
    const head = this.#head as FrameHead
    const take = Math.min(this.#remaining, chunk.length)
    const raw = chunk.subarray(0, take)
    let data = raw
    if (head.mask !== undefined) {
      data = Buffer.allocUnsafe(take)
      for (let i = 0; i < take; i++) data[i] = (raw[i] ?? 0) ^ (head.mask[(this.#offset + i) % 4] ?? 0)
    }
    this.#offset += take
    this.#remaining -= take
    this.#sink.payload(data, raw)
    if (this.#remaining === 0) this.#endFrame()
    return chunk.subarray(take)
  }

  #endFrame(): void {
    const head = this.#head as FrameHead
    this.#head = undefined
    this.#sink.end(head)
  }
}

/**
 * A close frame with a status code and a short reason; masked when it goes to a server (a client's
 * frames must be masked).
 * @example
 * socket.end(encodeCloseFrame(1008, 'policy', { mask: false }))
 */
export function encodeCloseFrame(code: number, reason: string, options: { mask: boolean }): Buffer {
  const payload = Buffer.concat([Buffer.from([code >> 8, code & 0xff]), Buffer.from(reason).subarray(0, 123)])
  const header = Buffer.from([0x80 | OPCODE.close, (options.mask ? 0x80 : 0) | payload.length])
  if (!options.mask) return Buffer.concat([header, payload])
  const mask = randomBytes(4)
  const masked = Buffer.from(payload.map((byte, i) => byte ^ (mask[i % 4] ?? 0)))
  return Buffer.concat([header, mask, masked])
}
