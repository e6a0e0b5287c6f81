import type { ErrorCode } from '../core/errors.js'
import type { GuardAllowed } from './decision.js'
import type { PolicyDecision, UnmetIntent } from './policy.js'
import { refused, type Verdict } from './verdict.js'

/** What a request (or WebSocket message) calls, as read for the policy: undefined when unreadable. */
export interface RequestCalls {
  readonly tools: ReadonlyArray<string> | undefined
  readonly mcpMethods: ReadonlyArray<string> | undefined
}

/** What the policy decides on, for an allowed caller and the calls its request (or message) makes. */
export function policyRequestOf(allowed: GuardAllowed, method: string, calls: RequestCalls) {
  const { id, path, task, via } = allowed
  return {
    id,
    method,
    path,
    ...(calls.tools !== undefined && { tools: calls.tools }),
    ...(calls.mcpMethods !== undefined && { mcpMethods: calls.mcpMethods }),
    ...(task !== undefined && { task: { scopes: task.scopes, purpose: task.purpose } }),
    hasProof: via !== 'jwt',
  }
}

/** The code and status of a policy denial: the intent condition it fell short of, else ERR_POLICY_DENIED. */
function denialOf(unmet: UnmetIntent | undefined, rule: string): { code: ErrorCode; what: string } {
  switch (unmet?.condition) {
    case 'taskToken':
      return { code: 'ERR_TASK_TOKEN_MISSING', what: `policy rule ${rule} needs a task token (Txn-Token)` }
    case 'scopes':
      return {
        code: 'ERR_TASK_SCOPE_MISSING',
        what: `policy rule ${rule} needs task scope ${unmet.missing.join(', ')}`,
      }
    case 'purpose':
      return { code: 'ERR_POLICY_DENIED', what: `the task's purpose does not match policy rule ${rule}` }
    case 'proof':
      return {
        code: 'ERR_PROOF_MISSING',
        what: `policy rule ${rule} needs proof of possession (a WIT-SVID with a Workload-Proof-Token, or a client certificate)`,
      }
    default:
      return { code: 'ERR_POLICY_DENIED', what: `denied by policy rule ${rule}` }
  }
}

/** The guard's verdict from the policy's decision: `allowed` as it is, or a 403 with the denial's code. */
export function byPolicy(verdict: PolicyDecision, allowed: GuardAllowed, calls: RequestCalls): Verdict {
  const { tools, mcpMethods } = calls
  const read = {
    ...(tools !== undefined && tools.length > 0 && { tools }),
    ...(mcpMethods !== undefined && mcpMethods.length > 0 && { mcpMethods }),
  }
  if (verdict.effect === 'allow') return { ...allowed, ...read }
  const about =
    verdict.tool !== undefined
      ? ` for tool ${JSON.stringify(verdict.tool)}`
      : verdict.mcpMethod !== undefined
        ? ` for MCP method ${JSON.stringify(verdict.mcpMethod)}`
        : ''
  const { id, via, task } = allowed
  const { code, what } = denialOf(verdict.unmet, verdict.rule)
  return refused(403, code, `${what}${about}`, { id, via, ...(task !== undefined && { task }), ...read })
}
