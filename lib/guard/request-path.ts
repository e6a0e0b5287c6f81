import { IdentityError } from '../core/errors.js'

/** Percent-encoded `/`, `\`, `.` and NUL: an upstream may decode them into path structure. */
const ENCODED_STRUCTURE = /%(2f|5c|2e|00)/i

/** True when `text` has a character at or below `highest` (control characters, space) or DEL. */
function hasControl(text: string, highest: number): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c <= highest || c === 0x7f) return true
  }
  return false
}

function refuse(why: string): IdentityError {
  return new IdentityError('ERR_REQUEST_INVALID', `the request path ${why}`)
}

/**
 * The path that policies see for a request target: origin-form only (`/a/b?q=1`), query and
 * fragment dropped, percent-decoded. Anything an upstream might read differently from the policy is
 * refused rather than guessed at: dot segments, empty segments (`//`), backslashes, an encoded `/`,
 * `\`, `.` or NUL, malformed percent-encoding, control characters, absolute-form and `*` targets.
 * @throws ERR_REQUEST_INVALID
 * @example
 * canonicalRequestPath('/tools/a%20b?x=1') // '/tools/a b'
 */
export function canonicalRequestPath(target: string | undefined): string {
  if (target === undefined || !target.startsWith('/')) throw refuse('must start with /')
  const end = target.search(/[?#]/)
  const raw = end === -1 ? target : target.slice(0, end)
  if (raw.includes('\\') || ENCODED_STRUCTURE.test(raw)) throw refuse('must not hide path structure')
  let path: string
  try {
    path = decodeURIComponent(raw)
  } catch {
    throw refuse('has malformed percent-encoding')
  }
  if (hasControl(raw, 0x20) || hasControl(path, 0x1f)) throw refuse('has control characters')
  const segments = path.split('/').slice(1)
  const inner = segments.slice(0, -1)
  if (inner.includes('') || segments.some((s) => s === '.' || s === '..'))
    throw refuse('must not have empty, "." or ".." segments')
  return path
}
