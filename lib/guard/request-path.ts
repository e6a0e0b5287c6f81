import { IdentityError } from '../core/errors.js'

/**
 * Percent-encoded `/`, `\`, `.` and NUL: an upstream may decode them into path structure, and `%25`
 * (the `%` sign): whatever follows it would decode a second time into something else (`%252e`).
 */
const ENCODED_STRUCTURE = /%(2f|5c|2e|00|25)/i

/** Characters a path keeps unencoded in its canonical form (RFC 3986 `pchar` and `/`, minus `;`). */
const PLAIN = /^[A-Za-z0-9\-._~!$&'()*+,=:@/]$/
/** A path made only of {@link PLAIN} characters (the common case: nothing to encode). */
const ALL_PLAIN = /^[A-Za-z0-9\-._~!$&'()*+,=:@/]*$/

/** True when `text` has a character at or below `highest` (control characters, space) or DEL. */
function hasControl(text: string, highest: number): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c <= highest || c === 0x7f) return true
  }
  return false
}

function refuse(why: string): IdentityError {
  return new IdentityError('ERR_PATH_INVALID', `the request path ${why}`)
}

/**
 * The path that policies see for a request target, and the only path the gateway forwards:
 * origin-form only (`/a/b?q=1`), query and fragment dropped, percent-decoded exactly once. Anything
 * an upstream might read differently from the policy is refused rather than guessed at: dot
 * segments, empty segments (`//`), `;` path parameters (Tomcat/Spring and others strip them), a
 * backslash, an encoded `/`, `\`, `.`, `%` or NUL (nothing can decode twice), malformed
 * percent-encoding, control characters, absolute-form and `*` targets. A trailing `/` is kept: the
 * policy treats `/mcp/` as `/mcp` (see `Policy`).
 * @throws ERR_PATH_INVALID
 * @example
 * canonicalRequestPath('/tools/a%20b?x=1') // '/tools/a b'
 * canonicalRequestPath('/%6dcp') // '/mcp'
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
  if (path.includes(';')) throw refuse('must not have ";" parameters')
  const segments = path.split('/').slice(1)
  const inner = segments.slice(0, -1)
  if (inner.includes('') || segments.some((s) => s === '.' || s === '..'))
    throw refuse('must not have empty, "." or ".." segments')
  return path
}

/**
 * The request target to forward for a canonical path: the path encoded in one fixed way (every
 * character outside RFC 3986's unreserved, sub-delims, `:` and `@` percent-encoded as UTF-8), then
 * the original query. `/%6dcp?x=1` arrives upstream as `/mcp?x=1`, the path the policy decided on.
 * @example
 * canonicalTarget('/tools/a b', '/tools/a%20b?q=1') // '/tools/a%20b?q=1'
 */
export function canonicalTarget(path: string, originalTarget: string | undefined): string {
  let encoded = ''
  if (ALL_PLAIN.test(path)) encoded = path
  else for (const char of path) encoded += PLAIN.test(char) ? char : encodeURIComponent(char)
  const target = originalTarget ?? ''
  const queryAt = target.search(/[?#]/)
  const query = queryAt === -1 || target[queryAt] === '#' ? '' : target.slice(queryAt).split('#')[0]
  return encoded + (query ?? '')
}
