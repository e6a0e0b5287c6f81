import { IdentityError } from '../../../lib/core/errors.js'
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../ports.js'

/** Which listing a page token belongs to; a token of one listing is refused by another. */
export type PageTokenKind = 'entries' | 'agents'

const PREFIX: Readonly<Record<PageTokenKind, string>> = { entries: 'e1:', agents: 'a1:' }
const MAX_TOKEN_LENGTH = 4096
const BASE64URL = /^[A-Za-z0-9_-]+$/

function invalidToken(): IdentityError {
  return new IdentityError(
    'ERR_PAGE_TOKEN_INVALID',
    'the page token is malformed or belongs to another listing',
  )
}

/** An opaque token that resumes a `kind` listing after the row whose key is `lastKey`. */
export function encodePageToken(kind: PageTokenKind, lastKey: string): string {
  return Buffer.from(PREFIX[kind] + lastKey, 'utf8').toString('base64url')
}

/**
 * The row key a page token resumes after, or undefined for the first page (absent or `''`).
 * `isKey` checks the key's shape for this listing.
 * @throws ERR_PAGE_TOKEN_INVALID
 */
export function decodePageToken(
  kind: PageTokenKind,
  token: string | undefined,
  isKey: (key: string) => boolean,
): string | undefined {
  if (token === undefined || token === '') return undefined
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH || !BASE64URL.test(token))
    throw invalidToken()
  const bytes = Buffer.from(token, 'base64url')
  if (bytes.toString('base64url') !== token) throw invalidToken()
  const text = bytes.toString('utf8')
  if (!Buffer.from(text, 'utf8').equals(bytes) || !text.startsWith(PREFIX[kind])) throw invalidToken()
  const key = text.slice(PREFIX[kind].length)
  if (!isKey(key)) throw invalidToken()
  return key
}

/**
 * The page size to use: the default for absent or 0, clamped to {@link MAX_PAGE_SIZE}.
 * @throws ERR_REQUEST_INVALID when it is negative or not a whole number
 */
export function resolvePageSize(pageSize: number | undefined): number {
  if (pageSize === undefined || pageSize === 0) return DEFAULT_PAGE_SIZE
  if (!Number.isSafeInteger(pageSize) || pageSize < 0) {
    throw new IdentityError('ERR_REQUEST_INVALID', 'page size must be a whole number >= 0')
  }
  return Math.min(pageSize, MAX_PAGE_SIZE)
}
