import type { Command } from 'commander'
import type { ApprovePendingRequestResponse__Output } from '../../common/gen/tessera/admin/v1/ApprovePendingRequestResponse.js'
import type { ListPendingRequestsResponse__Output } from '../../common/gen/tessera/admin/v1/ListPendingRequestsResponse.js'
import type { PendingRequest__Output } from '../../common/gen/tessera/admin/v1/PendingRequest.js'
import { parseDurationMs } from '../../lib/core/duration.js'
import { IdentityError } from '../../lib/core/errors.js'
import { type AdminClients, callAdmin, callAdminWarned } from '../admin-client.js'
import { printWarnings } from '../output.js'
import { type AdminOptions, adminAction, formatTime, type Output, withAdminOptions } from './admin-command.js'
import { formatRequest, validForSeconds } from './approval-format.js'
import { registerApprovalWatch } from './approval-watch.js'
import { formatEntry, ordered } from './entry.js'

type ApprovalOptions = AdminOptions & {
  readonly id?: string
  readonly all?: boolean
  readonly spiffeId?: string
  readonly template?: string
  readonly pinPath?: boolean
  readonly for?: string
  readonly wait?: string
}

/** `tessera approval list|show|approve|deny`: pending requests of workloads that matched no entry. */
export function registerApprovalCommands(program: Command): void {
  const approval = program
    .command('approval')
    .description('pending requests: workloads that matched no entry, for an admin to approve or deny')
  withAdminOptions(approval.command('list'))
    .description('list pending requests, the most recently seen first')
    .option('--all', 'also the approved, denied and expired requests still kept')
    .option(
      '--wait <duration>',
      'when none is listed yet, ask again (every 200 ms) for up to this long, e.g. 5s: an agent reports a refused program a moment after refusing it',
    )
    .action(adminAction<ApprovalOptions>(listRequests))
  withAdminOptions(approval.command('show'))
    .description('show one request: who asked, which binary and hash, its path and parent')
    .option('--id <id>', 'the request id')
    .action(adminAction<ApprovalOptions>(showRequest))
  withAdminOptions(approval.command('approve'))
    .description(
      'approve a request: an entry pinned to its uid and binary hash (unix:uid, unix:sha256), parented to the agent that reported it',
    )
    .option('--id <id>', 'the request id')
    .option('--spiffe-id <id>', 'the SPIFFE ID to give')
    .option(
      '--template <template>',
      'instead of --spiffe-id: e.g. spiffe://{trust_domain}/agents/{exe_name}; also {uid}, {user}, {sha256_prefix}',
    )
    .option('--pin-path', "also pin the binary's path (unix:path)")
    .option('--for <duration>', 'the entry expires after this long, e.g. 1h (default: never)')
    .action(adminAction<ApprovalOptions>(approveRequest))
  withAdminOptions(approval.command('deny'))
    .description(
      'deny a request: the same uid, binary hash and path is no new request for the server deny time; denying an approved request withdraws the consent: its entry is deleted, which revokes what was issued from it',
    )
    .option('--id <id>', 'the request id')
    .action(adminAction<ApprovalOptions>(denyRequest))
  registerApprovalWatch(approval)
}

function requireId(options: ApprovalOptions): string {
  if (options.id === undefined) throw new IdentityError('ERR_REQUEST_INVALID', '--id is required')
  return options.id
}

async function listRequests(admin: AdminClients, options: ApprovalOptions, out: Output): Promise<void> {
  const waitMs = options.wait === undefined ? 0 : parseDurationMs(options.wait)
  const deadline = Date.now() + waitMs
  const ask = () =>
    callAdmin<ListPendingRequestsResponse__Output>(admin, (o, r) =>
      admin.approvals.ListPendingRequests({ include_decided: options.all === true }, o, r),
    )
  let res = await ask()
  while (res.requests.length === 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200))
    res = await ask()
  }
  const value = { requests: res.requests, dropped: res.dropped }
  out.print(value, ({ requests, dropped }) => {
    const count = requests.length === 1 ? 'Found 1 request' : `Found ${requests.length} requests`
    const lost = dropped > 0 ? ` (${dropped} dropped: the list was full)` : ''
    return [`${count}${lost}`, ...requests.map(formatRequest)].join('\n\n')
  })
}

async function showRequest(admin: AdminClients, options: ApprovalOptions, out: Output): Promise<void> {
  const id = requireId(options)
  const request = await callAdmin<PendingRequest__Output>(admin, (o, r) =>
    admin.approvals.GetPendingRequest({ id }, o, r),
  )
  out.print(request, formatRequest)
}

async function approveRequest(admin: AdminClients, options: ApprovalOptions, out: Output): Promise<void> {
  const id = requireId(options)
  // A workload request needs exactly one of them, a task request neither: the server says which.
  if (options.spiffeId !== undefined && options.template !== undefined)
    throw new IdentityError('ERR_REQUEST_INVALID', 'give exactly one of --spiffe-id and --template')
  const request = {
    id,
    spiffe_id: options.spiffeId ?? '',
    template: options.template ?? '',
    pin_path: options.pinPath === true,
    valid_for: options.for === undefined ? 0 : validForSeconds(options.for),
  }
  const approved = await callAdminWarned<ApprovePendingRequestResponse__Output>(admin, (o, r) =>
    admin.approvals.ApprovePendingRequest(request, o, r),
  )
  const { request: req, entry } = approved.response
  const value = { request: req, entry: entry === null ? null : ordered(entry) }
  out.print(value, (v) =>
    v.request?.kind === 'task'
      ? `Approved task request ${v.request.id}: task ${v.request.task_id} begins`
      : [`Approved request ${v.request?.id ?? id}`, v.entry === null ? '' : formatEntry(v.entry)].join(
          '\n\n',
        ),
  )
  printWarnings(approved.warnings)
}

async function denyRequest(admin: AdminClients, options: ApprovalOptions, out: Output): Promise<void> {
  const id = requireId(options)
  const denied = await callAdmin<PendingRequest__Output>(admin, (o, r) =>
    admin.approvals.DenyPendingRequest({ id }, o, r),
  )
  out.print(denied, (d) =>
    d.entry_id === ''
      ? `Denied request ${d.id} until ${formatTime(d.denied_until)}`
      : `Withdrew approval ${d.id}: entry ${d.entry_id} deleted, what it issued revoked; denied until ${formatTime(d.denied_until)}`,
  )
}
