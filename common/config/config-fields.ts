import { isIP } from 'node:net'
import { resolve } from 'node:path'
import { parseDurationMs } from '../../lib/core/duration.js'
import { IdentityError } from '../../lib/core/errors.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import { TrustDomain } from '../../lib/core/trust-domain.js'

/** What a kind needs besides the raw value. */
export interface ParseContext {
  /** Absolute directory that relative paths are resolved against. */
  readonly cwd: string
  /** True for env vars and flags, whose values arrive as text: `"8081"` is then an integer. */
  readonly isText: boolean
}

/**
 * Turns one raw value (a JSON value from the file, or text from env and flags) into a typed one.
 * Throws an {@link IdentityError} whose message says what is wrong, without echoing the value
 * (it may be a secret such as a join token).
 */
export type Kind<T> = (value: unknown, ctx: ParseContext) => T

/** Longest Unix socket path Linux accepts (`sun_path` is 108 bytes with the trailing NUL). */
export const UNIX_SOCKET_PATH_MAX_BYTES = 107
/** Largest uid or gid; `(uid_t)-1` is reserved. */
export const MAX_UNIX_ID = 4_294_967_294

const INTEGER_TEXT = /^-?[0-9]+$/
const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/
const TRUE_TEXT = new Set(['true', '1', 'yes'])
const FALSE_TEXT = new Set(['false', '0', 'no'])

function invalid(message: string): IdentityError {
  return new IdentityError('ERR_CONFIG_INVALID', message)
}

function requireString(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw invalid('must be a non-empty string')
  return value
}

/** A non-empty string, optionally matching `pattern` (described by `hint`). */
export function stringKind(options: { pattern?: RegExp; hint?: string } = {}): Kind<string> {
  return (value) => {
    const text = requireString(value)
    if (options.pattern !== undefined && !options.pattern.test(text))
      throw invalid(`must be ${options.hint ?? `a string matching ${options.pattern}`}`)
    return text
  }
}

/** A safe integer within `[min, max]` (either bound may be left out). */
export function integerKind(range: { min?: number; max?: number } = {}): Kind<number> {
  const { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = range
  const rule =
    range.min === undefined && range.max === undefined
      ? 'must be an integer'
      : `must be an integer from ${min} to ${max}`
  return (value, ctx) => {
    const n = ctx.isText && typeof value === 'string' && INTEGER_TEXT.test(value) ? Number(value) : value
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max) throw invalid(rule)
    return n
  }
}

/** `true`/`false`; as text also `1`/`0` and `yes`/`no`. */
export function booleanKind(): Kind<boolean> {
  return (value, ctx) => {
    if (typeof value === 'boolean') return value
    if (ctx.isText && typeof value === 'string') {
      const text = value.toLowerCase()
      if (TRUE_TEXT.has(text)) return true
      if (FALSE_TEXT.has(text)) return false
    }
    throw invalid('must be true or false')
  }
}

/** A duration string (`1h30m`, `5m`, `45s`; see `parseDurationMs`), in milliseconds. */
export function durationKind(): Kind<number> {
  return (value) => {
    if (typeof value !== 'string') throw invalid('must be a duration such as 1h30m, 5m or 45s')
    return parseDurationMs(value)
  }
}

/** A trust domain name (`example.org`). */
export function trustDomainKind(): Kind<TrustDomain> {
  return (value) => TrustDomain.parse(requireString(value))
}

/** A SPIFFE ID (`spiffe://example.org/path`). */
export function spiffeIdKind(): Kind<SpiffeId> {
  return (value) => SpiffeId.parse(requireString(value))
}

/** One of `values`. */
export function enumKind<const T extends string>(values: readonly T[]): Kind<T> {
  const allowed: ReadonlySet<string> = new Set(values)
  return (value) => {
    if (typeof value !== 'string' || !allowed.has(value))
      throw invalid(`must be one of: ${values.join(', ')}`)
    return value as T
  }
}

/**
 * A file system path, made absolute against the context's `cwd`. With `allowStdout`, `-` stays
 * `-` (meaning standard output). With `maxBytes`, the absolute path must fit (Unix sockets).
 */
export function pathKind(options: { allowStdout?: boolean; maxBytes?: number } = {}): Kind<string> {
  return (value, ctx) => {
    const text = requireString(value)
    if (text.includes('\0')) throw invalid('must not contain a NUL byte')
    if (options.allowStdout === true && text === '-') return text
    const absolute = resolve(ctx.cwd, text)
    const bytes = Buffer.byteLength(absolute)
    if (options.maxBytes !== undefined && bytes > options.maxBytes)
      throw invalid(`must be at most ${options.maxBytes} bytes once made absolute, not ${bytes}`)
    return absolute
  }
}

/** A Unix socket path: absolute, and short enough for `sun_path`. */
export function socketPathKind(): Kind<string> {
  return pathKind({ maxBytes: UNIX_SOCKET_PATH_MAX_BYTES })
}

/** A host name or an IP address (IPv6 without brackets), such as a bind address. */
export function hostKind(): Kind<string> {
  return (value) => {
    const text = requireString(value)
    if (isIP(text) === 0 && !HOSTNAME.test(text)) throw invalid('must be a host name or an IP address')
    return text
  }
}

function isPort(text: string): boolean {
  return /^[0-9]{1,5}$/.test(text) && Number(text) >= 1 && Number(text) <= 65_535
}

/** The host and port of `host:port` or `[ipv6]:port`, or undefined when the text is neither. */
function splitHostPort(text: string): { host: string; port: string } | undefined {
  const v6 = /^\[([^\]]+)\]:([^:]*)$/.exec(text)
  if (v6 !== null) return isIP(v6[1] ?? '') === 6 ? { host: v6[1] ?? '', port: v6[2] ?? '' } : undefined
  const colon = text.lastIndexOf(':')
  const host = text.slice(0, colon)
  if (colon < 0 || (isIP(host) !== 4 && !HOSTNAME.test(host))) return undefined
  return { host, port: text.slice(colon + 1) }
}

/** `host:port` or `[ipv6]:port`, port from 1 to 65535. Returned as given. */
export function hostPortKind(): Kind<string> {
  return (value) => {
    const text = requireString(value)
    const parts = splitHostPort(text)
    if (parts === undefined || !isPort(parts.port))
      throw invalid('must be host:port or [ipv6]:port, with a port from 1 to 65535')
    return text
  }
}

function splitList(text: string): string[] {
  return text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0)
}

/** A list of `element`s: a JSON array, a repeated flag, or comma-separated text (`1000,1001`). */
export function listKind<T>(element: Kind<T>): Kind<readonly T[]> {
  return (value, ctx) => {
    const items: unknown = ctx.isText && typeof value === 'string' ? splitList(value) : value
    if (!Array.isArray(items)) throw invalid('must be a list')
    const problems: string[] = []
    const parsed = items.map((item: unknown, index) => {
      try {
        return element(item, ctx)
      } catch (err) {
        if (!(err instanceof IdentityError)) throw err
        problems.push(`[${index}] ${err.message}`)
        return undefined as T
      }
    })
    if (problems.length > 0) throw invalid(problems.join('; '))
    return parsed
  }
}
