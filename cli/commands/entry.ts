import type { Command } from 'commander'
import type { ListEntriesRequest } from '../../common/gen/tessera/admin/v1/ListEntriesRequest.js'
import type { ListEntriesResponse__Output } from '../../common/gen/tessera/admin/v1/ListEntriesResponse.js'
import type { Entry__Output } from '../../common/gen/tessera/types/v1/Entry.js'
import { formatDurationMs } from '../../lib/core/duration.js'
import { IdentityError } from '../../lib/core/errors.js'
import { type AdminClients, callAdmin, callAdminWarned } from '../admin-client.js'
import { collect, printWarnings } from '../output.js'
import {
  type AdminOptions,
  adminAction,
  formatFields,
  formatTime,
  type Output,
  withAdminOptions,
} from './admin-command.js'
import { addEntryFieldOptions, applyEntryFlags, type EntryFlags, parseSelectorFlag } from './entry-flags.js'

/** An entry as `--output json` prints it. */
type EntryJson = Omit<Entry__Output, 'created_at_ms'>

/** Entries asked for per page by `entry show`. */
const SHOW_PAGE_SIZE = 200

type EntryOptions = AdminOptions & EntryFlags & { readonly id?: string }
type ShowOptions = AdminOptions & {
  readonly id?: string
  readonly spiffeId?: string
  readonly parentId?: string
  readonly selector?: string[]
  readonly match?: string
  readonly federatesWith?: string
  readonly hint?: string
}

/** `tessera entry create|show|update|delete`, SPIRE's verbs over the admin API. */
export function registerEntryCommands(program: Command): void {
  const entry = program.command('entry').description('manage registration entries')
  addEntryFieldOptions(withAdminOptions(entry.command('create')))
    .description('create a registration entry')
    .action(adminAction<EntryOptions>(createEntry))
  withAdminOptions(entry.command('show'))
    .description('show registration entries (all of them unless filtered)')
    .option('--id <id>', 'only the entry with this id')
    .option('--spiffe-id <id>', 'only entries granting this SPIFFE ID')
    .option('--parent-id <id>', 'only entries with this parent')
    .option('--selector <type:value>', 'only entries whose selectors match these (repeatable)', collect)
    .option('--match <mode>', 'how selectors match: exact | subset | superset | any (default exact)')
    .option('--federates-with <trust-domain>', 'only entries federating with this trust domain')
    .option('--hint <text>', 'only entries with this hint')
    .action(adminAction<ShowOptions>(showEntries))
  addEntryFieldOptions(withAdminOptions(entry.command('update')))
    .description('change the given fields of an entry (the others are kept)')
    .requiredOption('--id <id>', 'the entry to update')
    .action(adminAction<EntryOptions>(updateEntry))
  withAdminOptions(entry.command('delete'))
    .description('delete a registration entry')
    .requiredOption('--id <id>', 'the entry to delete')
    .action(adminAction<AdminOptions & { id: string }>(deleteEntry))
}

async function createEntry(admin: AdminClients, options: EntryOptions, out: Output): Promise<void> {
  for (const [value, flag] of [
    [options.spiffeId, '--spiffe-id'],
    [options.parentId, '--parent-id'],
    [options.selector, '--selector'],
  ] as const) {
    if (value === undefined) throw new IdentityError('ERR_REQUEST_INVALID', `${flag} is required`)
  }
  const entry = applyEntryFlags({}, options)
  const created = await callAdminWarned<Entry__Output>(admin, (o, r) =>
    admin.entries.CreateEntry({ entry }, o, r),
  )
  out.print(ordered(created.response), formatEntry)
  printWarnings(created.warnings)
}

async function updateEntry(admin: AdminClients, options: EntryOptions, out: Output): Promise<void> {
  const id = options.id ?? ''
  const current = await callAdmin<Entry__Output>(admin, (o, r) => admin.entries.GetEntry({ id }, o, r))
  const entry = applyEntryFlags(current, options)
  const updated = await callAdminWarned<Entry__Output>(admin, (o, r) =>
    admin.entries.UpdateEntry({ entry }, o, r),
  )
  out.print(ordered(updated.response), formatEntry)
  printWarnings(updated.warnings)
}

async function deleteEntry(admin: AdminClients, options: { id: string }, out: Output): Promise<void> {
  const { id } = options
  const deleted = await callAdmin<Entry__Output>(admin, (o, r) => admin.entries.DeleteEntry({ id }, o, r))
  out.print(ordered(deleted), (e) => `Deleted entry ${e.id}`)
}

async function showEntries(admin: AdminClients, options: ShowOptions, out: Output): Promise<void> {
  const entries: Entry__Output[] = []
  if (options.id !== undefined) {
    const id = options.id
    entries.push(await callAdmin<Entry__Output>(admin, (o, r) => admin.entries.GetEntry({ id }, o, r)))
  } else {
    const request: ListEntriesRequest = {
      filter: toFilter(options),
      page_size: SHOW_PAGE_SIZE,
      page_token: '',
    }
    do {
      const page = await callAdmin<ListEntriesResponse__Output>(admin, (o, r) =>
        admin.entries.ListEntries(request, o, r),
      )
      entries.push(...page.entries)
      request.page_token = page.next_page_token
    } while (request.page_token !== '')
  }
  out.print({ entries: entries.map(ordered) }, ({ entries: list }) => formatEntryList(list))
}

function toFilter(options: ShowOptions): NonNullable<ListEntriesRequest['filter']> {
  return {
    by_spiffe_id: options.spiffeId ?? '',
    by_parent_id: options.parentId ?? '',
    by_selectors: (options.selector ?? []).map(parseSelectorFlag),
    selector_match: options.match ?? '',
    by_federates_with: options.federatesWith ?? '',
    by_hint: options.hint ?? '',
  }
}

function formatTtl(seconds: number): string {
  return seconds === 0 ? 'default' : formatDurationMs(seconds * 1000)
}

/**
 * An entry with its fields in the proto's order, for `--output json` (times in Unix seconds, like
 * every JSON output: `created_at_ms`, which orders entries, stays on the API).
 */
/** An entry in the fixed field order of `--output json`. */
export function ordered(e: Entry__Output): EntryJson {
  const { id, spiffe_id, parent_id, selectors, x509_svid_ttl, jwt_svid_ttl, dns_names, hint, admin } = e
  const { federates_with, expires_at, revision_number, created_at } = e
  return {
    id,
    spiffe_id,
    parent_id,
    selectors,
    x509_svid_ttl,
    jwt_svid_ttl,
    dns_names,
    hint,
    admin,
    federates_with,
    expires_at,
    revision_number,
    created_at,
  }
}

/** One entry as `Label : value` lines, SPIRE's layout. */
export function formatEntry(e: EntryJson): string {
  return formatFields([
    ['Entry ID', e.id],
    ['SPIFFE ID', e.spiffe_id],
    ['Parent ID', e.parent_id],
    ['Revision', String(e.revision_number)],
    ['X509-SVID TTL', formatTtl(e.x509_svid_ttl)],
    ['JWT-SVID TTL', formatTtl(e.jwt_svid_ttl)],
    ['Expires at', formatTime(e.expires_at)],
    ...e.selectors.map((s) => ['Selector', `${s.type}:${s.value}`] as const),
    ...e.dns_names.map((d) => ['DNS name', d] as const),
    ...e.federates_with.map((td) => ['Federates with', td] as const),
    ...(e.hint === '' ? [] : [['Hint', e.hint] as const]),
    ['Admin', String(e.admin)],
    ['Created at', formatTime(e.created_at)],
  ])
}

function formatEntryList(entries: ReadonlyArray<EntryJson>): string {
  const count = entries.length === 1 ? 'Found 1 entry' : `Found ${entries.length} entries`
  return [count, ...entries.map(formatEntry)].join('\n\n')
}
