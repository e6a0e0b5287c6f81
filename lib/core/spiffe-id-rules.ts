/**
 * The SPIFFE ID syntax rules (spec §1), as pure functions that name the first problem found.
 * `undefined` means the input is valid. Validating a whole ID allocates nothing: the checks scan
 * index ranges of the input instead of slicing it.
 */

/** Longest SPIFFE ID we accept or issue, in bytes (the spec's MUST-accept size). */
export const MAX_ID_BYTES = 2048
/** Longest trust domain name, in bytes (the RFC 3986 host limit). */
export const MAX_TRUST_DOMAIN_BYTES = 255
/** The only scheme prefix accepted: lowercase, as go-spiffe requires. */
export const SCHEME_PREFIX = 'spiffe://'

const SLASH = 0x2f
const DOT = 0x2e

/**
 * The same rules as the scanners below, lengths aside, as single expressions: V8 compiles them to
 * native code, which checks a typical valid ID in about a third of the scanners' time. The scanners
 * run only when these fail, to name the problem.
 */
const VALID_ID = /^spiffe:\/\/[a-z0-9._-]{1,255}(?:\/(?!\.\.?(?:\/|$))[A-Za-z0-9._-]+)*$/
const VALID_TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/

function isTrustDomainChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || // a-z
    (c >= 0x30 && c <= 0x39) || // 0-9
    c === DOT ||
    c === 0x2d || // -
    c === 0x5f // _
  )
}

function isPathChar(c: number): boolean {
  return isTrustDomainChar(c) || (c >= 0x41 && c <= 0x5a) // plus A-Z
}

/**
 * Problem with the trust domain name held in `s[start, end)`, or undefined.
 * All valid characters are ASCII, so a length in UTF-16 units equals the length in bytes
 * whenever the characters pass.
 */
function findTrustDomainProblemIn(s: string, start: number, end: number): string | undefined {
  if (end === start) return 'trust domain is missing'
  if (end - start > MAX_TRUST_DOMAIN_BYTES)
    return `trust domain is longer than ${MAX_TRUST_DOMAIN_BYTES} bytes`
  for (let i = start; i < end; i++) {
    if (!isTrustDomainChar(s.charCodeAt(i))) {
      return 'trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores'
    }
  }
  return undefined
}

/** Problem with the path held in `s[start, end)` (empty, or starting with `/`), or undefined. */
function findPathProblemIn(s: string, start: number, end: number): string | undefined {
  if (end === start) return undefined
  if (s.charCodeAt(start) !== SLASH) return 'path must have a leading slash'
  let segStart = start + 1
  for (let i = segStart; i <= end; i++) {
    const c = i === end ? SLASH : s.charCodeAt(i)
    if (c === SLASH) {
      const len = i - segStart
      if (len === 0)
        return i === end ? 'path cannot have a trailing slash' : 'path cannot contain empty segments'
      if (
        s.charCodeAt(segStart) === DOT &&
        (len === 1 || (len === 2 && s.charCodeAt(segStart + 1) === DOT))
      ) {
        return 'path cannot contain dot segments'
      }
      segStart = i + 1
    } else if (!isPathChar(c)) {
      return 'path segment characters are limited to letters, numbers, dots, dashes, and underscores'
    }
  }
  return undefined
}

/** Problem with a trust domain name (`example.org`), or undefined. */
export function findTrustDomainProblem(name: string): string | undefined {
  if (VALID_TRUST_DOMAIN.test(name)) return undefined
  return findTrustDomainProblemIn(name, 0, name.length)
}

/** Problem with a SPIFFE ID path (`''` or `/a/b`), or undefined. */
export function findPathProblem(path: string): string | undefined {
  return findPathProblemIn(path, 0, path.length)
}

/**
 * Index in `input` where the path of `spiffe://td[/path]` starts (`input.length` when there is
 * no path). Meaningful only for an input that starts with {@link SCHEME_PREFIX}.
 */
export function findPathStart(input: string): number {
  const slash = input.indexOf('/', SCHEME_PREFIX.length)
  return slash < 0 ? input.length : slash
}

/** Problem with a whole SPIFFE ID (`spiffe://td/path`), or undefined. Allocates nothing. */
export function findIdProblem(input: string): string | undefined {
  if (input.length <= MAX_ID_BYTES && VALID_ID.test(input)) return undefined
  if (input.length === 0) return 'SPIFFE ID is empty'
  if (!input.startsWith(SCHEME_PREFIX)) return 'scheme is missing or invalid'
  if (input.length > MAX_ID_BYTES) return `SPIFFE ID is longer than ${MAX_ID_BYTES} bytes`
  const pathStart = findPathStart(input)
  return (
    findTrustDomainProblemIn(input, SCHEME_PREFIX.length, pathStart) ??
    findPathProblemIn(input, pathStart, input.length)
  )
}

/** Splits `spiffe://td/path` into its parts, or names the problem. */
export function splitId(input: string): { trustDomain: string; path: string } | string {
  const problem = findIdProblem(input)
  if (problem !== undefined) return problem
  const pathStart = findPathStart(input)
  return { trustDomain: input.slice(SCHEME_PREFIX.length, pathStart), path: input.slice(pathStart) }
}

/**
 * Why a syntactically valid trust domain must still not be issued in a certificate, or undefined.
 * Go's X.509 parser splits a URI host on dots and refuses any empty label (spec §1), so
 * `a..b`, `.a` and `a.` would make every certificate that carries them unreadable to Go clients.
 */
export function findIssuanceProblem(trustDomain: string): string | undefined {
  if (trustDomain.startsWith('.') || trustDomain.endsWith('.') || trustDomain.includes('..')) {
    return 'trust domain has an empty label, which Go X.509 parsers reject'
  }
  return undefined
}
