import type { PendingRequest__Output } from '../../common/gen/tessera/admin/v1/PendingRequest.js'
import { parseDurationMs } from '../../lib/core/duration.js'
import { IdentityError } from '../../lib/core/errors.js'
import { formatFields, formatTime } from './admin-command.js'

/** `--for` in whole seconds, at least 1. @throws ERR_TTL_INVALID */
export function validForSeconds(text: string): number {
  const ms = parseDurationMs(text)
  if (ms < 1000 || ms % 1000 !== 0)
    throw new IdentityError('ERR_TTL_INVALID', '--for must be whole seconds, at least 1s')
  return ms / 1000
}

/** One request as `Label : value` lines, like `sudo` names who asks for what. */
export function formatRequest(r: PendingRequest__Output): string {
  if (r.kind === 'task') return formatTaskRequest(r)
  return formatFields([
    ['Request ID', r.id],
    ['State', r.state],
    ['User', `${r.user_name || '-'} (uid ${r.uid}, gid ${r.gid})`],
    ['Binary', r.exe_path],
    ['SHA-256', r.sha256],
    ['Parent', r.parent_exe || '-'],
    ['Cgroup', r.cgroup || '-'],
    ['Agent', r.agent_id],
    ['First seen', formatTime(r.first_seen)],
    ['Last seen', formatTime(r.last_seen)],
    ['Refused calls', String(r.count)],
    ...(r.denied_until > 0 ? [['Denied until', formatTime(r.denied_until)] as const] : []),
    ...(r.entry_id !== '' ? [['Entry ID', r.entry_id] as const] : []),
    ...(r.change !== '' ? [['Changed', describeChange(r)] as const] : []),
  ])
}

/** A task request: who asks, for which task (the scopes that need a human marked). */
function formatTaskRequest(r: PendingRequest__Output): string {
  const human = new Set(r.human_scopes)
  const scopes = r.scopes.map((s) => (human.has(s) ? `${s} (needs a human)` : s)).join(', ')
  return formatFields([
    ['Request ID', r.id],
    ['Kind', 'task: begin a task with scopes that need a human'],
    ['State', r.state],
    ['SPIFFE ID', r.spiffe_id],
    ['Scopes', scopes],
    ['Audiences', r.audiences.join(', ')],
    ['Purpose', r.purpose],
    ...(r.parent_task_id !== '' ? [['Parent task', r.parent_task_id] as const] : []),
    ['Task ID', r.task_id],
    ['User', `${r.user_name || '-'} (uid ${r.uid}, gid ${r.gid})`],
    ['Process', `pid ${r.pid}, ${r.exe_path || '-'}`],
    ['SHA-256', r.sha256 || '-'],
    ['Parent', r.parent_exe || '-'],
    ['Agent', r.agent_id],
    ['Asked at', formatTime(r.first_seen)],
    ...(r.state === 'pending' ? [['Waits until', formatTime(r.wait_until)] as const] : []),
    ...(r.count > 1 ? [['Asked again', `${r.count - 1} times while denied`] as const] : []),
    ...(r.denied_until > 0 ? [['Denied until', formatTime(r.denied_until)] as const] : []),
  ])
}

/** What changed since the earlier approval a request follows (re-consent), said for people. */
function describeChange(r: PendingRequest__Output): string {
  const was = `approved as request ${r.previous_request_id}`
  if (r.change === 'binary') return `the binary: its SHA-256 was ${r.previous_sha256} (${was})`
  if (r.change === 'user') return `the user: it ran as uid ${r.previous_uid} (${was})`
  if (r.change === 'expired') return `the approval expired or its entry was deleted (${was})`
  return r.change
}
