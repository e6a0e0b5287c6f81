/**
 * A strict DER reader. Values are located, never copied: every result refers to the caller's
 * buffer, so callers must not change that buffer while they hold what was read from it.
 * Every problem throws `IdentityError('ERR_DER_MALFORMED')`. Typed readers accept `undefined` (a value
 * that is absent, e.g. `children[3]` of a short SEQUENCE) and report it like a wrong tag.
 */
import { type ErrorCode, IdentityError } from '../errors.js'
import { Tag } from './der-writer.js'

/** Deepest nesting of constructed values that {@link readChildren} will descend into. */
export const MAX_DER_DEPTH = 16

/** One tag-length-value located in `source`. The header is `source[start, contentStart)`. */
export interface Tlv {
  /** The whole buffer this value was read from (not only this value). */
  readonly source: Buffer
  /** The identifier octet, e.g. `0x30` for SEQUENCE or `0xa0` for `[0]` constructed. */
  readonly tag: number
  /** Offset of the identifier octet. */
  readonly start: number
  /** Offset of the first content octet; `contentStart - start` is the header length. */
  readonly contentStart: number
  /** Offset just past the content. */
  readonly end: number
  /** Nesting depth: 0 for a top-level value. */
  readonly depth: number
}

/** Throws the reader's one error. */
export function failDer(message: string): never {
  throw new IdentityError('ERR_DER_MALFORMED', message)
}

/** Views any Uint8Array as a Buffer over the same memory (no copy). */
export function asBuffer(bytes: Uint8Array): Buffer {
  if (Buffer.isBuffer(bytes)) return bytes
  if (!(bytes instanceof Uint8Array)) failDer('input is not a byte array')
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/**
 * Reads the TLV at `offset`. With `parent`, the value must lie inside the parent's content and
 * counts one level deeper; without, it must lie inside `source`.
 * @throws ERR_DER_MALFORMED
 */
export function readTlv(source: Buffer, offset: number, parent?: Tlv): Tlv {
  const limit = parent ? parent.end : source.length
  const depth = parent ? parent.depth + 1 : 0
  if (depth > MAX_DER_DEPTH) failDer('values are nested too deeply')
  if (offset + 2 > limit) failDer('value is missing or has no length')
  const tag = source[offset]!
  if ((tag & 0x1f) === 0x1f) failDer('high-tag-number form is not supported')
  if (tag === 0) failDer('end-of-contents is not DER')
  let length = source[offset + 1]!
  let contentStart = offset + 2
  if (length >= 0x80) {
    const count = length & 0x7f
    if (count === 0) failDer('indefinite length is not DER')
    if (count > 4) failDer('length is too large')
    if (contentStart + count > limit) failDer('length runs past the end')
    if (source[contentStart] === 0) failDer('length is not minimally encoded')
    length = 0
    for (let i = 0; i < count; i++) length = length * 256 + source[contentStart + i]!
    if (length < 0x80) failDer('length is not minimally encoded')
    contentStart += count
  }
  const end = contentStart + length
  if (end > limit) failDer('value runs past the end')
  return { source, tag, start: offset, contentStart, end, depth }
}

/**
 * Reads exactly one value filling all of `bytes` (trailing bytes are refused), optionally of one tag.
 * @throws ERR_DER_MALFORMED
 */
export function readOne(bytes: Uint8Array, tag?: number): Tlv {
  const source = asBuffer(bytes)
  const tlv = readTlv(source, 0)
  if (tlv.end !== source.length) failDer('trailing bytes after the value')
  return tag === undefined ? tlv : expectTag(tlv, tag)
}

/**
 * The children of a constructed value, in order.
 * @throws ERR_DER_MALFORMED
 */
export function readChildren(parent: Tlv): Tlv[] {
  if ((parent.tag & 0x20) === 0) failDer('value is not constructed')
  const out: Tlv[] = []
  for (let at = parent.contentStart; at < parent.end; ) {
    const child = readTlv(parent.source, at, parent)
    out.push(child)
    at = child.end
  }
  return out
}

/**
 * The children of a value that must carry `tag` (SEQUENCE unless told otherwise).
 * @throws ERR_DER_MALFORMED
 */
export function readSequence(tlv: Tlv | undefined, tag: number = Tag.SEQUENCE): Tlv[] {
  return readChildren(expectTag(tlv, tag))
}

/**
 * Returns `tlv` when its identifier octet is `tag`.
 * @throws ERR_DER_MALFORMED
 */
export function expectTag(tlv: Tlv | undefined, tag: number): Tlv {
  if (tlv === undefined) failDer(`expected tag 0x${tag.toString(16)}, found nothing`)
  if (tlv.tag !== tag) failDer(`expected tag 0x${tag.toString(16)}, found 0x${tlv.tag.toString(16)}`)
  return tlv
}

/** The content octets of `tlv` (a view, no copy). */
export function contentOf(tlv: Tlv): Buffer {
  return tlv.source.subarray(tlv.contentStart, tlv.end)
}

/** The whole encoding of `tlv`, header included (a view, no copy). */
export function rawOf(tlv: Tlv): Buffer {
  return tlv.source.subarray(tlv.start, tlv.end)
}

/**
 * The single DER value that fills the content of `tlv` (an OCTET STRING's encapsulated value,
 * such as an extension's extnValue), one nesting level deeper.
 * @throws ERR_DER_MALFORMED
 */
export function readEncapsulated(tlv: Tlv): Tlv {
  const inner = readTlv(tlv.source, tlv.contentStart, tlv)
  if (inner.end !== tlv.end) failDer('trailing bytes after the encapsulated value')
  return inner
}

/** Offset of the first magnitude octet of a non-negative, minimally encoded INTEGER. */
function magnitudeStart(tlv: Tlv): number {
  const { source, contentStart: at, end } = tlv
  if (at === end) failDer('INTEGER is empty')
  const first = source[at]!
  if (
    at + 1 < end &&
    ((first === 0 && source[at + 1]! < 0x80) || (first === 0xff && source[at + 1]! >= 0x80))
  ) {
    failDer('INTEGER is not minimally encoded')
  }
  if (first & 0x80) failDer('INTEGER is negative')
  return first === 0 && at + 1 < end ? at + 1 : at
}

/**
 * The unsigned magnitude of a non-negative INTEGER, without the sign octet (`0` reads as one zero octet).
 * Pass `tag` for an IMPLICIT tagged INTEGER.
 * @throws ERR_DER_MALFORMED for negative values and non-minimal encodings
 */
export function readUnsignedInteger(tlv: Tlv | undefined, tag: number = Tag.INTEGER): Buffer {
  const checked = expectTag(tlv, tag)
  return checked.source.subarray(magnitudeStart(checked), checked.end)
}

/**
 * A non-negative INTEGER no greater than `max` (at most 2^48 - 1), as a number.
 * @throws ERR_DER_MALFORMED
 */
export function readSmallInteger(tlv: Tlv | undefined, max: number = 0xffff_ffff): number {
  const checked = expectTag(tlv, Tag.INTEGER)
  const start = magnitudeStart(checked)
  if (checked.end - start > 6) failDer('INTEGER is too large')
  let value = 0
  for (let i = start; i < checked.end; i++) value = value * 256 + checked.source[i]!
  if (value > max) failDer('INTEGER is out of range')
  return value
}

/**
 * An OBJECT IDENTIFIER in dotted form.
 * @throws ERR_DER_MALFORMED
 */
export function readOid(tlv: Tlv | undefined): string {
  const { source, contentStart, end } = expectTag(tlv, Tag.OID)
  if (contentStart === end) failDer('OBJECT IDENTIFIER is empty')
  if (source[end - 1]! & 0x80) failDer('OBJECT IDENTIFIER ends inside an arc')
  let dotted = ''
  let value = 0
  for (let i = contentStart; i < end; i++) {
    const byte = source[i]!
    if (value === 0 && byte === 0x80) failDer('OBJECT IDENTIFIER arc is not minimally encoded')
    if (value > 0x3fff_ffff_ffff) failDer('OBJECT IDENTIFIER arc is too large')
    value = value * 128 + (byte & 0x7f)
    if (byte & 0x80) continue
    if (dotted === '') {
      const top = value < 80 ? Math.floor(value / 40) : 2
      dotted = `${top}.${value - top * 40}`
    } else {
      dotted += `.${value}`
    }
    value = 0
  }
  return dotted
}

/**
 * A BIT STRING: its whole octets and how many bits of the last one are unused (those must be zero).
 * @throws ERR_DER_MALFORMED
 */
export function readBitString(tlv: Tlv | undefined): { bytes: Buffer; unusedBits: number } {
  const { source, contentStart, end } = expectTag(tlv, Tag.BIT_STRING)
  if (contentStart === end) failDer('BIT STRING is empty')
  const unusedBits = source[contentStart]!
  if (unusedBits > 7) failDer('BIT STRING has more than 7 unused bits')
  if (end - contentStart === 1 && unusedBits !== 0) failDer('empty BIT STRING has unused bits')
  if (unusedBits > 0 && (source[end - 1]! & ((1 << unusedBits) - 1)) !== 0) {
    failDer('BIT STRING unused bits are not zero')
  }
  return { bytes: source.subarray(contentStart + 1, end), unusedBits }
}

/**
 * The octets of a BIT STRING that must have no unused bits (signatures, public keys).
 * @throws ERR_DER_MALFORMED
 */
export function readOctetAlignedBitString(tlv: Tlv | undefined): Buffer {
  const { source, contentStart, end } = expectTag(tlv, Tag.BIT_STRING)
  if (contentStart === end || source[contentStart] !== 0)
    failDer('BIT STRING is not a whole number of octets')
  return source.subarray(contentStart + 1, end)
}

/**
 * The content of an OCTET STRING (or of an IMPLICIT one, with `tag`).
 * @throws ERR_DER_MALFORMED
 */
export function readOctetString(tlv: Tlv | undefined, tag: number = Tag.OCTET_STRING): Buffer {
  return contentOf(expectTag(tlv, tag))
}

/**
 * A BOOLEAN: DER allows only `0x00` and `0xff`.
 * @throws ERR_DER_MALFORMED
 */
export function readBoolean(tlv: Tlv | undefined): boolean {
  const { source, contentStart, end } = expectTag(tlv, Tag.BOOLEAN)
  const value = source[contentStart]
  if (end - contentStart !== 1 || (value !== 0 && value !== 0xff)) failDer('BOOLEAN is not 0x00 or 0xff')
  return value === 0xff
}

/**
 * Runs a decoding step; an error that does not already carry `code` becomes
 * `IdentityError(code, message)` with the original kept as `cause`.
 */
export function withErrorCode<T>(code: ErrorCode, message: string, step: () => T): T {
  try {
    return step()
  } catch (err) {
    if (err instanceof IdentityError && err.code === code) throw err
    throw new IdentityError(code, message, { cause: err })
  }
}
