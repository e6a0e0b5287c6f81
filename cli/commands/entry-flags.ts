import type { Command } from 'commander'
import type { Entry } from '../../common/gen/tessera/types/v1/Entry.js'
import type { Selector } from '../../common/gen/tessera/types/v1/Selector.js'
import { parseDurationMs } from '../../lib/core/duration.js'
import { IdentityError } from '../../lib/core/errors.js'
import { collect } from '../output.js'

/** The entry fields a command line can set (`entry create`, `entry update`). */
export interface EntryFlags {
  readonly spiffeId?: string
  readonly parentId?: string
  readonly selector?: string[]
  readonly x509Ttl?: string
  readonly jwtTtl?: string
  readonly dnsName?: string[]
  readonly hint?: string
  readonly admin?: boolean
  readonly expiresAt?: string
  readonly federatesWith?: string[]
}

const UNIX_SECONDS = /^[0-9]{1,12}$/
const RFC_3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/

/** Adds the entry field options; repeatable ones replace the whole list when given. */
export function addEntryFieldOptions(command: Command): Command {
  return command
    .option('--spiffe-id <id>', 'the SPIFFE ID the entry grants')
    .option('--parent-id <id>', 'the agent (or agent alias) whose workloads may get it')
    .option('--selector <type:value>', 'a selector, e.g. unix:uid:1000 (repeatable; all must match)', collect)
    .option('--x509-ttl <duration>', 'X509-SVID TTL, e.g. 1h (0 = server default)')
    .option('--jwt-ttl <duration>', 'JWT-SVID TTL, e.g. 5m (0 = server default)')
    .option('--dns-name <name>', 'a DNS name for the X509-SVID (repeatable)', collect)
    .option('--hint <text>', 'a hint passed to workloads to tell SVIDs apart')
    .option('--admin', 'the holder may call the admin API (over mTLS, --server-address)')
    .option('--no-admin', 'the holder may not call the admin API (update)')
    .option('--expires-at <time>', 'RFC 3339 time or Unix seconds when the entry expires (0 = never)')
    .option(
      '--federates-with <trust-domain>',
      'a trust domain whose bundle the workload gets (repeatable)',
      collect,
    )
}

/**
 * A selector flag, `type:value` (the type ends at the first `:`). The server validates the parts.
 * @throws ERR_SELECTOR_INVALID when there is no `:`
 */
export function parseSelectorFlag(text: string): Selector {
  const colon = text.indexOf(':')
  if (colon <= 0) throw new IdentityError('ERR_SELECTOR_INVALID', `selector "${text}" must be <type>:<value>`)
  return { type: text.slice(0, colon), value: text.slice(colon + 1) }
}

/**
 * A TTL flag in whole seconds: a duration (`1h`, `90s`) or `0` for the server default.
 * @throws ERR_TTL_INVALID
 */
export function parseTtlSeconds(text: string, flag: string): number {
  if (text === '0') return 0
  const ms = parseDurationMs(text)
  if (ms % 1000 !== 0) throw new IdentityError('ERR_TTL_INVALID', `${flag} must be whole seconds`)
  return ms / 1000
}

/**
 * `--expires-at`: Unix seconds, or an RFC 3339 time (`2030-01-01T00:00:00Z`); `0` means never.
 * @throws ERR_ENTRY_INVALID
 */
export function parseExpiresAt(text: string): number {
  if (UNIX_SECONDS.test(text)) return Number(text)
  const ms = RFC_3339.test(text) ? Date.parse(text) : Number.NaN
  if (Number.isNaN(ms) || ms < 0)
    throw new IdentityError('ERR_ENTRY_INVALID', '--expires-at must be an RFC 3339 time or Unix seconds')
  return Math.floor(ms / 1000)
}

/** `entry` with the fields the flags set replaced. */
export function applyEntryFlags(entry: Entry, flags: EntryFlags): Entry {
  const has = <T>(value: T | undefined): value is T => value !== undefined
  return {
    ...entry,
    ...(has(flags.spiffeId) && { spiffe_id: flags.spiffeId }),
    ...(has(flags.parentId) && { parent_id: flags.parentId }),
    ...(has(flags.selector) && { selectors: flags.selector.map(parseSelectorFlag) }),
    ...(has(flags.x509Ttl) && { x509_svid_ttl: parseTtlSeconds(flags.x509Ttl, '--x509-ttl') }),
    ...(has(flags.jwtTtl) && { jwt_svid_ttl: parseTtlSeconds(flags.jwtTtl, '--jwt-ttl') }),
    ...(has(flags.dnsName) && { dns_names: flags.dnsName }),
    ...(has(flags.hint) && { hint: flags.hint }),
    ...(has(flags.admin) && { admin: flags.admin }),
    ...(has(flags.expiresAt) && { expires_at: parseExpiresAt(flags.expiresAt) }),
    ...(has(flags.federatesWith) && { federates_with: flags.federatesWith }),
  }
}
