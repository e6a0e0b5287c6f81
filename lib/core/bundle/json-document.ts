import { IdentityError } from '../errors.js'

/**
 * JSON helpers for bundle documents. `JSON.parse` on Node 20 cannot give a number's source text
 * nor report repeated member names, so {@link listMembers} walks the raw text of an object that
 * `JSON.parse` has already accepted: that is how `spiffe_sequence` keeps all 64 bits and how a
 * bundle map finds duplicate trust domains.
 */

/** True for a JSON object (not null, not an array). */
export function isJsonObject(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * The text of a JSON document given as a string or UTF-8 bytes.
 * @throws ERR_BUNDLE_MALFORMED on bad UTF-8 or another input type
 */
export function documentText(document: string | Uint8Array): string {
  if (typeof document === 'string') return document
  try {
    return utf8.decode(document)
  } catch (err) {
    throw new IdentityError('ERR_BUNDLE_MALFORMED', 'the bundle is not UTF-8 text', { cause: err })
  }
}

/**
 * Parses a JSON document given as a string or UTF-8 bytes.
 * @throws ERR_BUNDLE_MALFORMED on bad UTF-8 or JSON
 */
export function parseJsonDocument(document: string | Uint8Array): unknown {
  const text = documentText(document)
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new IdentityError('ERR_BUNDLE_MALFORMED', 'the bundle is not valid JSON', { cause: err })
  }
}

/** One member of a JSON object: its decoded name and the source text of its value. */
export interface RawMember {
  readonly name: string
  readonly raw: string
}

/**
 * The members of the JSON object `text`, in source order, repeats included. `text` must be
 * valid JSON whose top-level value is an object (parse it with `JSON.parse` first).
 */
export function listMembers(text: string): RawMember[] {
  const members: RawMember[] = []
  let i = skipSpace(text, 0) + 1
  for (;;) {
    i = skipSpace(text, i)
    if (i >= text.length || text[i] === '}') return members
    const nameEnd = skipString(text, i)
    const name = JSON.parse(text.slice(i, nameEnd)) as string
    const valueStart = skipSpace(text, skipSpace(text, nameEnd) + 1)
    const valueEnd = skipValue(text, valueStart)
    members.push({ name, raw: text.slice(valueStart, valueEnd) })
    i = skipSpace(text, valueEnd)
    if (text[i] === ',') i++
  }
}

function skipSpace(text: string, i: number): number {
  let j = i
  while (j < text.length && (text[j] === ' ' || text[j] === '\n' || text[j] === '\r' || text[j] === '\t')) j++
  return j
}

/** The index after the string that starts at `i` (an opening quote). */
function skipString(text: string, i: number): number {
  let j = i + 1
  while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1
  return j + 1
}

/** The index after the value that starts at `i`. */
function skipValue(text: string, i: number): number {
  const first = text[i]
  if (first === '"') return skipString(text, i)
  if (first !== '{' && first !== '[') {
    let j = i
    while (j < text.length && !',}] \n\r\t'.includes(text[j]!)) j++
    return j
  }
  let depth = 0
  let j = i
  while (j < text.length) {
    const c = text[j]
    if (c === '"') {
      j = skipString(text, j)
      continue
    }
    if (c === '{' || c === '[') depth++
    else if (c === '}' || c === ']') depth--
    j++
    if (depth === 0) return j
  }
  return j
}
