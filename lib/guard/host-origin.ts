import { IdentityError } from '../core/errors.js'

/** A host name as compared: lower case, no brackets around IPv6, no trailing dot. */
function canonicalHost(host: string): string {
  const lower = host.toLowerCase()
  const unbracketed = lower.startsWith('[') && lower.endsWith(']') ? lower.slice(1, -1) : lower
  return unbracketed.endsWith('.') ? unbracketed.slice(0, -1) : unbracketed
}

/**
 * The host name of a `Host` header without its port (`127.0.0.1:8080` → `127.0.0.1`, `[::1]:80`
 * → `::1`), lower case; undefined when the header is missing or malformed.
 * @example
 * hostOfHeader('LocalHost:3000') // 'localhost'
 */
export function hostOfHeader(header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  const text = header.trim()
  const match = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]\s]+)(?::([0-9]{1,5}))?$/.exec(text)
  if (match === null || match[1] === undefined) return undefined
  return canonicalHost(match[1])
}

/**
 * A configured host name (`localhost`, `127.0.0.1`, `::1` or `[::1]`) in the form
 * {@link hostOfHeader} returns.
 * @throws ERR_CONFIG_INVALID when it has a port, a path or spaces
 * @example
 * normalizeAllowedHost('[::1]') // '::1'
 */
export function normalizeAllowedHost(host: string): string {
  const parsed = hostOfHeader(host.includes(':') && !host.startsWith('[') ? `[${host}]` : host)
  if (parsed === undefined || parsed.length === 0 || /[/\s]/.test(host))
    throw new IdentityError('ERR_CONFIG_INVALID', `allowed host "${host}" must be a host name without a port`)
  return parsed
}

/**
 * The serialized origin of an `Origin` header (`https://app.example`), or undefined when it is
 * `null`, malformed, or more than an origin.
 * @example
 * originOfHeader('https://App.Example:443') // 'https://app.example'
 */
export function originOfHeader(header: string): string | undefined {
  let url: URL
  try {
    url = new URL(header.trim())
  } catch {
    return undefined
  }
  const isBare = url.pathname === '/' && url.search === '' && url.hash === '' && url.username === ''
  if (!isBare || url.origin === 'null' || url.password !== '') return undefined
  return url.origin
}

/**
 * A configured origin in the form {@link originOfHeader} returns.
 * @throws ERR_CONFIG_INVALID when it is not `scheme://host[:port]`
 * @example
 * normalizeAllowedOrigin('https://app.example/') // 'https://app.example'
 */
export function normalizeAllowedOrigin(origin: string): string {
  const parsed = originOfHeader(origin)
  if (parsed === undefined)
    throw new IdentityError('ERR_CONFIG_INVALID', `allowed origin "${origin}" must be scheme://host[:port]`)
  return parsed
}
