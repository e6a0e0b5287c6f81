import { IdentityError } from '../core/errors.js'
import { SpiffeId } from '../core/spiffe-id.js'

/**
 * A compiled pattern: true when `value` matches it.
 * @example
 * const agents: Matcher = compileIdPattern('spiffe://example.org/agents/*')
 * agents('spiffe://example.org/agents/claude') // true
 */
export type Matcher = (value: string) => boolean

function invalid(message: string): IdentityError {
  return new IdentityError('ERR_CONFIG_INVALID', message)
}

/** How a pattern ends: exactly, one more whole segment (`/*`), or the base itself and anything below (`/**`). */
type Shape = { kind: 'exact'; base: string } | { kind: 'child' | 'subtree'; base: string }

function shapeOf(pattern: string): Shape {
  const shape: Shape = pattern.endsWith('/**')
    ? { kind: 'subtree', base: pattern.slice(0, -3) }
    : pattern.endsWith('/*')
      ? { kind: 'child', base: pattern.slice(0, -2) }
      : { kind: 'exact', base: pattern }
  if (shape.base.includes('*')) throw invalid('a wildcard may only be a whole last segment: /* or /**')
  return shape
}

function matcherOf(shape: Shape): Matcher {
  const { base } = shape
  const prefix = `${base}/`
  if (shape.kind === 'exact') return (value) => value === base
  if (shape.kind === 'subtree') return (value) => value === base || value.startsWith(prefix)
  return (value) =>
    value.length > prefix.length && value.startsWith(prefix) && !value.includes('/', prefix.length)
}

/**
 * Compiles a SPIFFE ID pattern: an exact ID (`spiffe://td/agents/claude`), `<id>/*` for the IDs one
 * segment below (`spiffe://td/agents/*`), or `<id>/**` for the ID itself and every ID below it
 * (`spiffe://td/**` is the whole trust domain). The part before the wildcard must be a valid SPIFFE ID.
 * @throws ERR_CONFIG_INVALID, saying what is wrong
 * @example
 * compileIdPattern('spiffe://example.org/**')('spiffe://example.org/a/b') // true
 */
export function compileIdPattern(pattern: unknown): Matcher {
  if (typeof pattern !== 'string' || pattern.length === 0) throw invalid('must be a non-empty string')
  const shape = shapeOf(pattern)
  try {
    SpiffeId.parse(shape.base)
  } catch (err) {
    throw invalid(`is not a SPIFFE ID pattern: ${(err as Error).message}`)
  }
  return matcherOf(shape)
}

/** How a policy compares paths: `sensitive` (the default) or `insensitive` to letter case. */
export type PathCase = 'sensitive' | 'insensitive'

/**
 * The form of a canonical path that path patterns are matched against: one trailing `/` dropped
 * (`/mcp/` is `/mcp` to the policy; `/` stays `/`), lower case when the policy ignores case.
 * @example
 * pathKey('/MCP/', 'insensitive') // '/mcp'
 */
export function pathKey(path: string, pathCase: PathCase = 'sensitive'): string {
  const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path
  return pathCase === 'insensitive' ? trimmed.toLowerCase() : trimmed
}

function pathShape(pattern: unknown, pathCase: PathCase): Shape {
  if (typeof pattern !== 'string' || !pattern.startsWith('/')) throw invalid('must be a path starting with /')
  if (/[?#;%\\\s]/.test(pattern))
    throw invalid('must be a decoded path without query, fragment, ";", "%" or spaces')
  const shape = shapeOf(pathCase === 'insensitive' ? pattern.toLowerCase() : pattern)
  const { base } = shape
  if (base.includes('//') || (shape.kind !== 'exact' && base.endsWith('/')))
    throw invalid('must not have empty segments')
  if (base.split('/').some((s) => s === '.' || s === '..'))
    throw invalid('must not have "." or ".." segments')
  return shape.kind === 'exact' ? { kind: 'exact', base: pathKey(base) } : shape
}

/**
 * Compiles a request path pattern: an exact path (`/health`), `<path>/*` for one more segment
 * (`/tools/*`), or `<path>/**` for the path itself and everything below it (`/**` is every path).
 * The matcher takes a {@link pathKey}: one trailing `/` never changes a match, and with
 * `insensitive` letter case does not either.
 * @throws ERR_CONFIG_INVALID, saying what is wrong
 * @example
 * compilePathPattern('/tools/*')('/tools/search') // true
 */
export function compilePathPattern(pattern: unknown, pathCase: PathCase = 'sensitive'): Matcher {
  return matcherOf(pathShape(pattern, pathCase))
}

/**
 * The fixed part of a path pattern (`/admin` for `/admin/**`, `` for `/**`), as matched.
 * @throws ERR_CONFIG_INVALID, as {@link compilePathPattern}
 * @example
 * pathPatternBase('/tools/*') // '/tools'
 */
export function pathPatternBase(pattern: unknown): string {
  return pathShape(pattern, 'sensitive').base
}

/** `text` with letters folded one way or the other (`ſ` and the Kelvin sign fold to ASCII upwards). */
function folds(text: string): [string, string] {
  return [text.toLowerCase(), text.toUpperCase()]
}

/**
 * The policy path `key` differs from only by letter case, if any: `/MCP/x` against `/mcp` gives
 * `/mcp`. Such a request would reach a case-insensitive upstream (Express's default router, for
 * one) as the path a case-sensitive rule did not see.
 * @example
 * caseConfusableBase('/Admin/users', ['/admin']) // '/admin'
 */
export function caseConfusableBase(key: string, bases: ReadonlyArray<string>): string | undefined {
  for (const base of bases) {
    if (base.length === 0 || key.length < base.length) continue
    const head = key.slice(0, base.length)
    if (head === base || (key.length > base.length && key[base.length] !== '/')) continue
    const [lower, upper] = folds(head)
    const [baseLower, baseUpper] = folds(base)
    if (lower === baseLower || upper === baseUpper) return base
  }
  return undefined
}

/**
 * Compiles a tool name pattern: an exact name (`search`), or a prefix ending in `*` (`fs_*`; `*`
 * alone is every tool).
 * @throws ERR_CONFIG_INVALID, saying what is wrong
 * @example
 * compileToolPattern('fs_*')('fs_read') // true
 */
export function compileToolPattern(pattern: unknown): Matcher {
  if (typeof pattern !== 'string' || pattern.length === 0) throw invalid('must be a non-empty string')
  const star = pattern.indexOf('*')
  if (star === -1) return (value) => value === pattern
  if (star !== pattern.length - 1) throw invalid('a wildcard may only be the last character')
  const prefix = pattern.slice(0, -1)
  return (value) => value.startsWith(prefix)
}

const METHOD = /^[A-Za-z]+$/

/**
 * Normalizes an HTTP method name for a rule (upper case).
 * @throws ERR_CONFIG_INVALID when it is not a method token
 * @example
 * normalizeMethod('get') // 'GET'
 */
export function normalizeMethod(method: unknown): string {
  if (typeof method !== 'string' || !METHOD.test(method)) throw invalid('must be an HTTP method such as GET')
  return method.toUpperCase()
}
