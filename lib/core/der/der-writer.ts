/**
 * A minimal DER encoder: tag-length-value building blocks for certificates and CSRs.
 * Every function returns a complete TLV as a Buffer; callers concatenate them.
 */

/** Universal tags used by X.509. */
export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const

/** The DER length octets for `length`. */
export function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length])
  const bytes: number[] = []
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff)
  return Buffer.from([0x80 | bytes.length, ...bytes])
}

/** One TLV with the given tag byte and content. */
export function tlv(tag: number, content: Uint8Array): Buffer {
  const len = encodeLength(content.length)
  const out = Buffer.allocUnsafe(1 + len.length + content.length)
  out[0] = tag
  len.copy(out, 1)
  out.set(content, 1 + len.length)
  return out
}

/** A constructed TLV whose content is the concatenation of `parts`. */
export function constructed(tag: number, parts: ReadonlyArray<Uint8Array>): Buffer {
  return tlv(tag, Buffer.concat(parts))
}

export function sequence(...parts: Uint8Array[]): Buffer {
  return constructed(Tag.SEQUENCE, parts)
}

export function set(...parts: Uint8Array[]): Buffer {
  return constructed(Tag.SET, parts)
}

/** `[n]` EXPLICIT: a constructed context tag wrapping one or more TLVs. */
export function explicit(n: number, ...parts: Uint8Array[]): Buffer {
  return constructed(0xa0 | n, parts)
}

/** `[n]` IMPLICIT primitive: the content of a primitive type under a context tag. */
export function implicitPrimitive(n: number, content: Uint8Array): Buffer {
  return tlv(0x80 | n, content)
}

export function boolean(value: boolean): Buffer {
  return tlv(Tag.BOOLEAN, Buffer.from([value ? 0xff : 0x00]))
}

export function nullValue(): Buffer {
  return Buffer.from([Tag.NULL, 0x00])
}

/** A non-negative INTEGER from an unsigned big-endian magnitude (leading zeros trimmed, sign octet added). */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let start = 0
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++
  const trimmed = magnitude.subarray(start)
  if (trimmed.length === 0) return tlv(Tag.INTEGER, Buffer.from([0]))
  const needsPad = (trimmed[0] ?? 0) & 0x80
  return tlv(Tag.INTEGER, needsPad ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed)
}

/** A small non-negative INTEGER. */
export function smallInteger(value: number): Buffer {
  const bytes: number[] = []
  let n = value
  do {
    bytes.unshift(n & 0xff)
    n = Math.floor(n / 256)
  } while (n > 0)
  return unsignedInteger(Buffer.from(bytes))
}

/** OBJECT IDENTIFIER from dotted form; the first two arcs share one base-128 subidentifier (X.690 §8.19). */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number)
  const subidentifiers = [(arcs[0] ?? 0) * 40 + (arcs[1] ?? 0), ...arcs.slice(2)]
  const out: number[] = []
  for (const value of subidentifiers) {
    const chunk: number[] = [value & 0x7f]
    for (let n = Math.floor(value / 128); n > 0; n = Math.floor(n / 128)) chunk.unshift((n & 0x7f) | 0x80)
    out.push(...chunk)
  }
  return tlv(Tag.OID, Buffer.from(out))
}

/** BIT STRING with zero unused bits. */
export function bitString(bytes: Uint8Array): Buffer {
  return tlv(Tag.BIT_STRING, Buffer.concat([Buffer.from([0]), bytes]))
}

/**
 * BIT STRING for named bits (keyUsage): bit 0 is the most significant bit of the first octet.
 * DER drops trailing zero bits and records how many bits of the last octet are unused.
 */
export function namedBits(bits: ReadonlyArray<number>): Buffer {
  if (bits.length === 0) return tlv(Tag.BIT_STRING, Buffer.from([0]))
  const highest = Math.max(...bits)
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1)
  for (const b of bits) bytes[b >> 3] = (bytes[b >> 3] ?? 0) | (0x80 >> (b & 7))
  const unused = 7 - (highest & 7)
  return tlv(Tag.BIT_STRING, Buffer.concat([Buffer.from([unused]), bytes]))
}

export function octetString(bytes: Uint8Array): Buffer {
  return tlv(Tag.OCTET_STRING, bytes)
}

export function utf8String(value: string): Buffer {
  return tlv(Tag.UTF8_STRING, Buffer.from(value, 'utf8'))
}

export function printableString(value: string): Buffer {
  return tlv(Tag.PRINTABLE_STRING, Buffer.from(value, 'latin1'))
}

export function ia5String(value: string): Buffer {
  return tlv(Tag.IA5_STRING, Buffer.from(value, 'latin1'))
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0')
}

/**
 * A certificate validity time per RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime after;
 * whole seconds, always `Z`.
 */
export function x509Time(ms: number): Buffer {
  const d = new Date(ms)
  const year = d.getUTCFullYear()
  const rest =
    pad(d.getUTCMonth() + 1, 2) +
    pad(d.getUTCDate(), 2) +
    pad(d.getUTCHours(), 2) +
    pad(d.getUTCMinutes(), 2) +
    pad(d.getUTCSeconds(), 2) +
    'Z'
  if (year >= 1950 && year < 2050) return tlv(Tag.UTC_TIME, Buffer.from(pad(year % 100, 2) + rest, 'latin1'))
  return tlv(Tag.GENERALIZED_TIME, Buffer.from(pad(year, 4) + rest, 'latin1'))
}
