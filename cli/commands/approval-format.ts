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

/** What changed since the earlier approval a request follows (re-consent), said for people. */
function describeChange(r: PendingRequest__Output): string {
  const was = `approved as request ${r.previous_request_id}`
  if (r.change === 'binary') return `the binary: its SHA-256 was ${r.previous_sha256} (${was})`
  if (r.change === 'user') return `the user: it ran as uid ${r.previous_uid} (${was})`
  if (r.change === 'expired') return `the approval expired or its entry was deleted (${was})`
  return r.change
}
