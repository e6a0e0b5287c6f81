import { IdentityError } from './errors.js'
import { findTesseraSelectorProblem, LAUNCH_SELECTOR_TYPE } from './launch-name.js'

/** Longest selector type (`unix`, `k8s`, …), in bytes. */
export const MAX_SELECTOR_TYPE_LENGTH = 64
/** Longest whole selector, `type:value`, in UTF-8 bytes. */
export const MAX_SELECTOR_BYTES = 1024

/**
 * How an entry's selectors are compared with a query's, with SPIRE's meanings for entry filters:
 * `exact` the same set; `subset` the entry's ⊆ the query's; `superset` the entry's ⊇ the query's;
 * `any` at least one in common.
 */
export type SelectorMatchMode = 'exact' | 'subset' | 'superset' | 'any'

const UINT32_MAX = 0xffff_ffff
const DECIMAL = /^(?:0|[1-9][0-9]{0,9})$/
const SHA256_HEX = /^[0-9a-f]{64}$/
const NAME_FORBIDDEN = /[\s:]/

function isUint32(v: string): boolean {
  return DECIMAL.test(v) && Number(v) <= UINT32_MAX
}

/** A user or group name: non-empty, without `:` or whitespace. */
function isName(v: string): boolean {
  return v.length > 0 && !NAME_FORBIDDEN.test(v)
}

/** `/` or `/a/b`: absolute, with no empty, `.` or `..` segment and no trailing slash. */
function isNormalizedAbsolutePath(v: string): boolean {
  if (v === '/') return true
  if (!v.startsWith('/')) return false
  return v
    .slice(1)
    .split('/')
    .every((s) => s !== '' && s !== '.' && s !== '..')
}

/** The kinds of the `unix` attestor (spec §8, DESIGN §6) and how each value is checked. */
const UNIX_KINDS: ReadonlyMap<string, (v: string) => boolean> = new Map([
  ['uid', isUint32],
  ['gid', isUint32],
  ['supplementary_gid', isUint32],
  ['user', isName],
  ['group', isName],
  ['supplementary_group', isName],
  ['path', isNormalizedAbsolutePath],
  ['cgroup', isNormalizedAbsolutePath],
  ['sha256', (v: string) => SHA256_HEX.test(v)],
])

function findUnixValueProblem(value: string): string | undefined {
  const colon = value.indexOf(':')
  if (colon < 0) return 'unix selector value must be <kind>:<value>'
  const check = UNIX_KINDS.get(value.slice(0, colon))
  if (check === undefined) return 'unknown unix selector kind'
  return check(value.slice(colon + 1)) ? undefined : 'malformed value for this unix selector kind'
}

function isTypeChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x5f || c === 0x2d // a-z 0-9 _ -
}

function findTypeProblem(type: string): string | undefined {
  if (type.length === 0) return 'selector type is missing'
  if (type.length > MAX_SELECTOR_TYPE_LENGTH) return 'selector type is too long'
  for (let i = 0; i < type.length; i++) {
    if (!isTypeChar(type.charCodeAt(i))) return 'selector type characters are limited to a-z, 0-9, _ and -'
  }
  return undefined
}

/**
 * Checks a value's characters and returns its UTF-8 size, or names the problem: control characters
 * (C0, DEL, C1, so NUL too) and lone surrogates, which cannot travel as UTF-8, are refused.
 */
function measureValue(value: string): number | string {
  let bytes = 0
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return 'selector value cannot contain control characters'
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = value.charCodeAt(i + 1)
      if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) return 'selector value is not valid Unicode'
      i++
      bytes += 4
    } else {
      bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : 3
    }
  }
  return bytes
}

const TOO_LONG = `selector is longer than ${MAX_SELECTOR_BYTES} bytes`

function findSelectorProblem(type: string, value: string): string | undefined {
  const typeProblem = findTypeProblem(type)
  if (typeProblem !== undefined) return typeProblem
  if (value.length === 0) return 'selector value is missing'
  const room = MAX_SELECTOR_BYTES - type.length - 1
  if (value.length > room) return TOO_LONG // UTF-16 units never outnumber UTF-8 bytes: no need to scan
  const size = measureValue(value)
  if (typeof size === 'string') return size
  if (size > room) return TOO_LONG
  // Types of Tessera's own attestors are checked strictly; others (added later) need only be well formed.
  if (type === 'unix') return findUnixValueProblem(value)
  return type === LAUNCH_SELECTOR_TYPE ? findTesseraSelectorProblem(value) : undefined
}

function invalid(message: string): IdentityError {
  return new IdentityError('ERR_SELECTOR_INVALID', message)
}

/**
 * A workload or node selector, `type:value` (`unix:uid:1000`). Immutable; compare with
 * {@link Selector.equals}. Values of type `unix` are checked kind by kind (spec §8).
 */
export class Selector {
  readonly #type: string
  readonly #value: string
  readonly #text: string

  private constructor(type: string, value: string, text: string) {
    this.#type = type
    this.#value = value
    this.#text = text
  }

  /**
   * Parses `type:value`; the type ends at the first `:`, the value may hold more (`unix:uid:1000`).
   * @throws ERR_SELECTOR_INVALID
   */
  static parse(input: string): Selector {
    if (typeof input !== 'string') throw invalid('selector must be a string')
    const colon = input.indexOf(':')
    if (colon < 0) throw invalid('selector must be <type>:<value>')
    return Selector.#build(input.slice(0, colon), input.slice(colon + 1), input)
  }

  /**
   * Builds a selector from its parts, as attestors do: `Selector.from('unix', 'uid:1000')`.
   * @throws ERR_SELECTOR_INVALID
   */
  static from(type: string, value: string): Selector {
    if (typeof type !== 'string' || typeof value !== 'string') throw invalid('selector parts must be strings')
    return Selector.#build(type, value, `${type}:${value}`)
  }

  static #build(type: string, value: string, text: string): Selector {
    const problem = findSelectorProblem(type, value)
    if (problem !== undefined) throw invalid(problem)
    return new Selector(type, value, text)
  }

  /** The type, `unix`. */
  get type(): string {
    return this.#type
  }

  /** The value, `uid:1000`. */
  get value(): string {
    return this.#value
  }

  /** True when both have the same type and value. */
  equals(other: Selector): boolean {
    return this.#text === other.#text
  }

  /** `type:value`, which {@link Selector.parse} reads back. */
  toString(): string {
    return this.#text
  }

  /** `{ type, value }`, the shape SPIRE's APIs use. */
  toJSON(): { type: string; value: string } {
    return { type: this.#type, value: this.#value }
  }
}

/** Orders selectors by their `type:value` text, code unit by code unit (not by locale). */
export function compareSelectors(a: Selector, b: Selector): number {
  const x = a.toString()
  const y = b.toString()
  return x < y ? -1 : x > y ? 1 : 0
}

/** The distinct selectors of `list`, sorted by {@link compareSelectors}; the first of equal ones is kept. */
export function normalizeSelectors(list: Iterable<Selector>): readonly Selector[] {
  const byText = new Map<string, Selector>()
  for (const s of list) {
    if (!byText.has(s.toString())) byText.set(s.toString(), s)
  }
  return [...byText.values()].sort(compareSelectors)
}

function textsOf(list: readonly Selector[]): Set<string> {
  return new Set(list.map((s) => s.toString()))
}

function isSubset(small: ReadonlySet<string>, big: ReadonlySet<string>): boolean {
  for (const t of small) if (!big.has(t)) return false
  return true
}

/**
 * True when an entry's selectors match a query's under `mode` ({@link SelectorMatchMode});
 * duplicates and order do not matter. An empty set on either side never matches: entries always
 * carry selectors and an empty filter is refused upstream, so an empty set is a mistake, never "all".
 * @throws ERR_SELECTOR_INVALID for a mode outside {@link SelectorMatchMode} (untyped callers)
 */
export function matchSelectors(
  entry: readonly Selector[],
  query: readonly Selector[],
  mode: SelectorMatchMode,
): boolean {
  const e = textsOf(entry)
  const q = textsOf(query)
  if (e.size === 0 || q.size === 0) return false
  switch (mode) {
    case 'exact':
      return e.size === q.size && isSubset(e, q)
    case 'subset':
      return isSubset(e, q)
    case 'superset':
      return isSubset(q, e)
    case 'any':
      for (const t of e) if (q.has(t)) return true
      return false
    default:
      throw invalid('unknown selector match mode')
  }
}

/**
 * True when an entry admits a workload: every entry selector is among the workload's (spec §8).
 * An entry with no selectors admits nobody. Allocates nothing; both lists are short.
 */
export function selectorsAdmit(
  entrySelectors: readonly Selector[],
  workloadSelectors: readonly Selector[],
): boolean {
  if (entrySelectors.length === 0) return false
  for (const e of entrySelectors) {
    if (!includesSelector(workloadSelectors, e)) return false
  }
  return true
}

function includesSelector(list: readonly Selector[], s: Selector): boolean {
  for (const x of list) if (x.equals(s)) return true
  return false
}
