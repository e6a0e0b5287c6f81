import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import type { Duplex } from 'node:stream'

/** Just enough of RFC 6455 for tests: the handshake key and small unfragmented frames. */

const HANDSHAKE_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

export const OPCODE_CONTINUATION = 0x0
export const OPCODE_TEXT = 0x1
export const OPCODE_CLOSE = 0x8

/** The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`. */
export function acceptKeyFor(key: string): string {
  return createHash('sha1')
    .update(key + HANDSHAKE_GUID)
    .digest('base64')
}

/** A fresh `Sec-WebSocket-Key`. */
export function newWebSocketKey(): string {
  return randomBytes(16).toString('base64')
}

/** One frame (final unless `fin: false`); clients mask, servers do not. Payloads up to 64 KiB. */
export function encodeFrame(
  payload: Buffer,
  options: { mask: boolean; opcode?: number; fin?: boolean },
): Buffer {
  if (payload.length > 0xffff) throw new RangeError('test frames stay under 64 KiB')
  const opcode = options.opcode ?? OPCODE_TEXT
  const first = (options.fin === false ? 0 : 0x80) | opcode
  const maskBit = options.mask ? 0x80 : 0
  const length =
    payload.length < 126
      ? Buffer.from([first, maskBit | payload.length])
      : Buffer.from([first, maskBit | 126, payload.length >> 8, payload.length & 0xff])
  if (!options.mask) return Buffer.concat([length, payload])
  const mask = randomBytes(4)
  const masked = Buffer.from(payload.map((byte, i) => byte ^ (mask[i % 4] ?? 0)))
  return Buffer.concat([length, mask, masked])
}

/** The first complete frame in `data` and its size in bytes, or undefined when more bytes are needed. */
export function decodeFrame(data: Buffer): { opcode: number; payload: Buffer; size: number } | undefined {
  if (data.length < 2) return undefined
  const opcode = (data[0] ?? 0) & 0x0f
  const isMasked = ((data[1] ?? 0) & 0x80) !== 0
  let length = (data[1] ?? 0) & 0x7f
  let offset = 2
  if (length === 126) {
    if (data.length < 4) return undefined
    length = data.readUInt16BE(2)
    offset = 4
  }
  const maskAt = offset
  if (isMasked) offset += 4
  if (data.length < offset + length) return undefined
  const payload = Buffer.from(data.subarray(offset, offset + length))
  if (isMasked)
    for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] ?? 0) ^ (data[maskAt + (i % 4)] ?? 0)
  return { opcode, payload, size: offset + length }
}

/** Reads frames from a socket, in order. */
export class FrameReader {
  #buffer: Buffer
  readonly #socket: Duplex

  constructor(socket: Duplex, initial: Buffer = Buffer.alloc(0)) {
    this.#socket = socket
    this.#buffer = initial
  }

  /** The next frame; rejects if the socket ends first. */
  async next(): Promise<{ opcode: number; payload: Buffer }> {
    for (;;) {
      const frame = decodeFrame(this.#buffer)
      if (frame !== undefined) {
        this.#buffer = this.#buffer.subarray(frame.size)
        return frame
      }
      const [chunk] = (await Promise.race([
        once(this.#socket, 'data'),
        once(this.#socket, 'close').then(() => Promise.reject(new Error('the socket closed'))),
      ])) as [Buffer]
      this.#buffer = Buffer.concat([this.#buffer, chunk])
    }
  }
}

/**
 * A message split into masked fragments of `size` bytes (text first, then continuations), as a
 * client may send it.
 */
export function encodeFragments(text: string, size: number): Buffer[] {
  const bytes = Buffer.from(text)
  const frames: Buffer[] = []
  for (let at = 0; at < bytes.length; at += size) {
    const isLast = at + size >= bytes.length
    const opcode = at === 0 ? OPCODE_TEXT : OPCODE_CONTINUATION
    frames.push(encodeFrame(bytes.subarray(at, at + size), { mask: true, opcode, fin: isLast }))
  }
  return frames
}

/** Reads frames until a close frame; its status code and every text payload before it. */
export async function readUntilClose(frames: FrameReader): Promise<{ code: number; texts: string[] }> {
  const texts: string[] = []
  for (;;) {
    const frame = await frames.next()
    if (frame.opcode === OPCODE_CLOSE)
      return { code: frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : 1005, texts }
    texts.push(frame.payload.toString())
  }
}
