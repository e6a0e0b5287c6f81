/**
 * DER readers for character strings and the two X.509 time types (RFC 5280 §4.1.2.5).
 * Every problem throws `IdentityError('ERR_DER_MALFORMED')`.
 */
import { isUtf8 } from 'node:buffer'
import { contentOf, expectTag, failDer, type Tlv } from './der-reader.js'
import { Tag } from './der-writer.js'

/**
 * An IA5String (ASCII); pass `tag` for an IMPLICIT one such as a GeneralName.
 * @throws ERR_DER_MALFORMED
 */
export function readIa5String(tlv: Tlv | undefined, tag: number = Tag.IA5_STRING): string {
  const { source, contentStart, end } = expectTag(tlv, tag)
  for (let i = contentStart; i < end; i++) if (source[i]! > 0x7f) failDer('IA5String has a non-ASCII octet')
  return source.toString('latin1', contentStart, end)
}

/**
 * A UTF8String, refusing invalid UTF-8.
 * @throws ERR_DER_MALFORMED
 */
export function readUtf8String(tlv: Tlv | undefined): string {
  const c = contentOf(expectTag(tlv, Tag.UTF8_STRING))
  if (!isUtf8(c)) failDer('UTF8String is not valid UTF-8')
  return c.toString('utf8')
}

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/

/**
 * A PrintableString (letters, digits, space and `'()+,-./:=?`).
 * @throws ERR_DER_MALFORMED
 */
export function readPrintableString(tlv: Tlv | undefined): string {
  const c = contentOf(expectTag(tlv, Tag.PRINTABLE_STRING))
  const text = c.toString('latin1')
  if (!PRINTABLE.test(text)) failDer('PrintableString has a character outside its set')
  return text
}

function readDigits(source: Buffer, at: number, count: number): number {
  let value = 0
  for (let i = at; i < at + count; i++) {
    const digit = source[i]! - 0x30
    if (digit < 0 || digit > 9) failDer('time has a non-digit')
    value = value * 10 + digit
  }
  return value
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31
}

/** Epoch ms of `year` and the `MMDDhhmmss` starting at `at`, with every field range-checked. */
function toEpochMs(source: Buffer, at: number, year: number): number {
  const month = readDigits(source, at, 2)
  const day = readDigits(source, at + 2, 2)
  const hour = readDigits(source, at + 4, 2)
  const minute = readDigits(source, at + 6, 2)
  const second = readDigits(source, at + 8, 2)
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month))
    failDer('time has an invalid date')
  if (hour > 23 || minute > 59 || second > 59) failDer('time has an invalid time of day')
  if (year >= 100) return Date.UTC(year, month - 1, day, hour, minute, second)
  const date = new Date(Date.UTC(2000, month - 1, day, hour, minute, second))
  date.setUTCFullYear(year)
  return date.getTime()
}

/**
 * A UTCTime (`YYMMDDhhmmssZ`; years 50–99 are 19xx) or GeneralizedTime (`YYYYMMDDhhmmssZ`) as epoch ms.
 * Seconds and the `Z` are required; offsets and fractions are refused, as RFC 5280 requires.
 * @throws ERR_DER_MALFORMED
 */
export function readTime(tlv: Tlv | undefined): number {
  if (tlv === undefined) return failDer('time is missing')
  const { source, contentStart: at, end } = tlv
  if (tlv.tag === Tag.UTC_TIME) {
    if (end - at !== 13 || source[at + 12] !== 0x5a) failDer('UTCTime is not YYMMDDhhmmssZ')
    const yy = readDigits(source, at, 2)
    return toEpochMs(source, at + 2, yy < 50 ? 2000 + yy : 1900 + yy)
  }
  if (tlv.tag === Tag.GENERALIZED_TIME) {
    if (end - at !== 15 || source[at + 14] !== 0x5a) failDer('GeneralizedTime is not YYYYMMDDhhmmssZ')
    return toEpochMs(source, at + 4, readDigits(source, at, 4))
  }
  return failDer('expected UTCTime or GeneralizedTime')
}
