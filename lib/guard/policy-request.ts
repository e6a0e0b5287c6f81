import type { SpiffeId } from '../core/spiffe-id.js'
import type { PolicyTask, UnmetIntent } from './policy-intent.js'

/** What a rule, or the policy's default, decides. */
export type PolicyEffect = 'allow' | 'deny'

/** What a policy decides about: an authenticated caller and what it asks for. */
export interface PolicyRequest {
  readonly id: SpiffeId
  /** The HTTP method (any case). */
  readonly method: string
  /** The canonical path (see `canonicalRequestPath`); one trailing `/` makes no difference. */
  readonly path: string
  /**
   * The tools the request calls: `[]` for none, undefined when they could not be read. When they
   * are unknown, deny rules with `tools` match and allow rules with `tools` do not (fail closed).
   */
  readonly tools?: ReadonlyArray<string>
  /**
   * The MCP (JSON-RPC) methods the request calls (`tools/call`, `resources/read`): `[]` for none,
   * undefined when they could not be read (then deny rules with `mcpMethods` match and allow rules
   * with `mcpMethods` do not).
   */
  readonly mcpMethods?: ReadonlyArray<string>
  /** The task the request acts for (its validated task token); undefined when it sent none. */
  readonly task?: PolicyTask
  /** True when the caller proved possession of its key (WIT + WPT, or mTLS), false for a bearer token. */
  readonly hasProof?: boolean
}

/** A policy's answer and the rule that gave it. */
export interface PolicyDecision {
  readonly effect: PolicyEffect
  /** The deciding rule's `name`, else `rules[<index>]`; `default` when no rule matched. */
  readonly rule: string
  /** The tool a denial was about, when the request called tools. */
  readonly tool?: string
  /** The MCP method a denial was about, when the request's methods were read. */
  readonly mcpMethod?: string
  /**
   * Why a denial was about intent: a deny rule with task conditions matched a request without a
   * task token (`taskToken`), or no rule allowed the request and the allow rule `rule` would have
   * but for this condition.
   */
  readonly unmet?: UnmetIntent
}
