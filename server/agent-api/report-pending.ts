import type { handleUnaryCall } from '@grpc/grpc-js'
import type { PendingWorkload__Output } from '../../common/gen/tessera/agent/v1/PendingWorkload.js'
import type { ReportPendingRequest__Output } from '../../common/gen/tessera/agent/v1/ReportPendingRequest.js'
import type { ReportPendingResponse } from '../../common/gen/tessera/agent/v1/ReportPendingResponse.js'
import { IdentityError } from '../../lib/core/errors.js'
import type { PendingReports } from '../consent/pending-reports.js'
import type { PendingFacts, PendingSighting } from '../consent/pending-request.js'
import { type AgentApiDeps, unaryHandler } from './handler.js'

/** Most workloads one ReportPending call may carry (the agent sends fewer, batched). */
export const MAX_REPORTED_WORKLOADS = 256
const MAX_PATH_LENGTH = 4096
const MAX_NAME_LENGTH = 256
const MAX_UNIX_ID = 0xffff_fffe
const MAX_COUNT = 1_000_000

const invalid = (message: string) => new IdentityError('ERR_REQUEST_INVALID', message)

/**
 * ReportPending: the agent's refused Workload API callers, each counted toward its pending request
 * (DESIGN §10). The server stamps its own times. A malformed item refuses the whole call.
 */
export function reportPendingHandler(
  deps: AgentApiDeps,
  reports: PendingReports,
): handleUnaryCall<ReportPendingRequest__Output, ReportPendingResponse> {
  return unaryHandler(deps, 'ReportPending', async (call) => {
    const agent = await deps.auth.authenticate(call, 'ReportPending')
    const { workloads, dropped } = call.request
    if (workloads.length > MAX_REPORTED_WORKLOADS)
      throw new IdentityError('ERR_REQUEST_TOO_LARGE', `at most ${MAX_REPORTED_WORKLOADS} workloads per call`)
    const nowMs = deps.ctx.clock.nowMs()
    const sightings: PendingSighting[] = workloads.map((w) => ({
      agentId: agent.id.toString(),
      facts: factsOf(w),
      firstSeenMs: nowMs,
      lastSeenMs: nowMs,
      count: countOf(w.count),
    }))
    await reports.report(sightings, Math.min(dropped, MAX_COUNT), agent.caller)
    return {}
  })
}

function factsOf(w: PendingWorkload__Output): PendingFacts {
  if (!isUnixId(w.uid) || !isUnixId(w.gid)) throw invalid('uid and gid must be Unix ids')
  if (!/^[0-9a-f]{64}$/.test(w.sha256)) throw invalid('sha256 must be 64 lowercase hex digits')
  if (!isPath(w.exe_path)) throw invalid('exe_path must be an absolute path')
  if (w.parent_exe !== '' && !isPath(w.parent_exe)) throw invalid('parent_exe must be an absolute path')
  if (
    w.cgroup.length > MAX_PATH_LENGTH ||
    w.user_name.length > MAX_NAME_LENGTH ||
    hasControl(w.user_name + w.cgroup)
  )
    throw invalid('user_name or cgroup is malformed')
  return {
    uid: w.uid,
    userName: w.user_name,
    gid: w.gid,
    exePath: w.exe_path,
    sha256: w.sha256,
    cgroup: w.cgroup,
    parentExe: w.parent_exe,
  }
}

function countOf(count: number): number {
  if (!Number.isSafeInteger(count) || count < 1) throw invalid('count must be at least 1')
  return Math.min(count, MAX_COUNT)
}

const isUnixId = (n: number) => Number.isSafeInteger(n) && n >= 0 && n <= MAX_UNIX_ID
const hasControl = (s: string) => {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20 || c === 0x7f) return true
  }
  return false
}
const isPath = (p: string) => p.startsWith('/') && p.length <= MAX_PATH_LENGTH && !hasControl(p)
