import { readFileSync } from 'node:fs'
import { ConfigError } from '../core/config-error.js'
import { IdentityError } from '../core/errors.js'
import { needsTask, unmetIntent } from './policy-intent.js'
import { caseConfusableBase, type PathCase, pathKey } from './policy-pattern.js'
import type { PolicyDecision, PolicyEffect, PolicyRequest } from './policy-request.js'
import {
  baseMatches,
  type CompileContext,
  type CompiledRule,
  compileRule,
  type InQuestion,
  inQuestion,
  isEffect,
  isObject,
  NO_METHOD,
  NO_TOOL,
  ruleMatches,
  UNKNOWN_METHODS,
  UNKNOWN_TOOLS,
} from './policy-rule.js'

export type { PolicyTask, UnmetIntent } from './policy-intent.js'
export type { PathCase } from './policy-pattern.js'
export type { PolicyDecision, PolicyEffect, PolicyRequest } from './policy-request.js'

const TOP_KEYS: ReadonlySet<string> = new Set(['rules', 'default', 'description', 'pathCase'])

/**
 * Request-time policy (DESIGN §10, §11): allow and deny rules over SPIFFE ID patterns × methods ×
 * paths × tool names × MCP methods, and the request's intent: the task token's scopes and purpose,
 * and whether the caller proved possession of its key; evaluated on every request. A rule matches
 * when every condition it has matches (a condition left out matches anything); a task condition
 * with no task token fails an allow rule and matches a deny rule (fail closed). Any matching deny rule wins over every allow rule; with no
 * matching rule, `default` decides (`deny` unless set). Immutable.
 * @example
 * const policy = Policy.fromJson({
 *   rules: [
 *     { effect: 'allow', spiffeIds: ['spiffe://example.org/agents/*'], paths: ['/tools/**'] },
 *     { effect: 'deny', spiffeIds: ['spiffe://example.org/agents/intern'], methods: ['POST'] },
 *   ],
 *   default: 'deny',
 * })
 * policy.evaluate({ id, method: 'GET', path: '/tools/search' }).effect // 'allow'
 */
export class Policy {
  readonly #rules: ReadonlyArray<CompiledRule>
  readonly #default: PolicyEffect
  readonly #pathCase: PathCase
  readonly #pathBases: ReadonlyArray<string>

  private constructor(rules: ReadonlyArray<CompiledRule>, fallback: PolicyEffect, ctx?: CompileContext) {
    this.#rules = rules
    this.#default = fallback
    this.#pathCase = ctx?.pathCase ?? 'sensitive'
    this.#pathBases = Object.freeze([...(ctx?.pathBases ?? [])])
  }

  /**
   * A policy from its JSON value, `{ "rules": [...], "default": "deny", "pathCase": "sensitive" }`.
   * @throws ConfigError (ERR_CONFIG_INVALID) listing every problem, each prefixed with `source`
   */
  static fromJson(value: unknown, source = 'policy'): Policy {
    const problems: string[] = []
    if (!isObject(value)) throw new ConfigError([`${source}: must be a JSON object`])
    for (const key of Object.keys(value)) if (!TOP_KEYS.has(key)) problems.push(`${key}: unknown key`)
    const fallback = value['default'] ?? 'deny'
    if (!isEffect(fallback)) problems.push('default: must be "allow" or "deny"')
    const pathCase = value['pathCase'] ?? 'sensitive'
    if (pathCase !== 'sensitive' && pathCase !== 'insensitive')
      problems.push('pathCase: must be "sensitive" or "insensitive"')
    const ctx: CompileContext = {
      pathCase: pathCase === 'insensitive' ? 'insensitive' : 'sensitive',
      problems,
      pathBases: new Set(),
    }
    const rules = value['rules']
    if (!Array.isArray(rules)) problems.push('rules: must be an array')
    const compiled = (Array.isArray(rules) ? rules : []).flatMap((rule: unknown, i) => {
      const c = compileRule(rule, `rules[${i}]`, ctx)
      return c ? [c] : []
    })
    if (problems.length > 0) throw new ConfigError(problems.map((p) => `${source}: ${p}`))
    return new Policy(Object.freeze(compiled), isEffect(fallback) ? fallback : 'deny', ctx)
  }

  /**
   * Reads and compiles a JSON policy file.
   * @throws ConfigError (ERR_CONFIG_INVALID): unreadable file, invalid JSON, or every problem found
   */
  static read(path: string): Policy {
    let text: string
    try {
      text = readFileSync(path, 'utf8')
    } catch (err) {
      throw new ConfigError([`policy ${path}: cannot be read (${(err as NodeJS.ErrnoException).code})`])
    }
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch (err) {
      throw new ConfigError([`policy ${path}: is not valid JSON (${(err as Error).message})`])
    }
    return Policy.fromJson(value, `policy ${path}`)
  }

  /** A policy without rules that allows every authenticated caller. */
  static allowAll(): Policy {
    return new Policy([], 'allow')
  }

  /** True when a rule has a `tools` condition, so tool names are worth reading. */
  get usesTools(): boolean {
    return this.#rules.some((r) => r.tools !== undefined)
  }

  /** True when a rule has an `mcpMethods` condition, so the request's JSON-RPC methods are worth reading. */
  get usesMcpMethods(): boolean {
    return this.#rules.some((r) => r.mcpMethods !== undefined)
  }

  /**
   * True when the policy can tell one WebSocket message from another: a rule has a `tools`,
   * `mcpMethods` or `methods` condition (each message is decided as a `POST` of it to the upgrade's path).
   */
  get decidesMessages(): boolean {
    return this.#rules.some(
      (r) => r.tools !== undefined || r.mcpMethods !== undefined || r.methods !== undefined,
    )
  }

  /** How paths are compared: `sensitive` unless the policy says `"pathCase": "insensitive"`. */
  get pathCase(): PathCase {
    return this.#pathCase
  }

  /**
   * Refuses a canonical path that differs from a path in the policy only by letter case (`/MCP`
   * when a rule names `/mcp`), when paths are compared case-sensitively: a case-insensitive upstream
   * would serve it as the path the rule meant, yet the rule would not match it.
   * @throws ERR_PATH_INVALID
   */
  checkPath(path: string): void {
    if (this.#pathCase === 'insensitive') return
    const base = caseConfusableBase(pathKey(path), this.#pathBases)
    if (base !== undefined)
      throw new IdentityError(
        'ERR_PATH_INVALID',
        `the request path differs from the policy path ${JSON.stringify(base)} only by letter case`,
      )
  }

  /**
   * Decides a request; with several tools or MCP methods, each tool with each method is decided and
   * any denial denies the request. A path {@link checkPath} refuses is denied (rule `pathCase`).
   */
  evaluate(request: PolicyRequest): PolicyDecision {
    const keyed = { ...request, path: pathKey(request.path, this.#pathCase) }
    if (this.#pathCase === 'sensitive' && caseConfusableBase(keyed.path, this.#pathBases) !== undefined)
      return { effect: 'deny', rule: 'pathCase' }
    let last: PolicyDecision | undefined
    for (const tool of inQuestion(keyed.tools, NO_TOOL, UNKNOWN_TOOLS))
      for (const method of inQuestion(keyed.mcpMethods, NO_METHOD, UNKNOWN_METHODS)) {
        last = this.#decide(keyed, { tool, method })
        if (last.effect === 'deny')
          return {
            ...last,
            ...(typeof tool === 'string' && { tool }),
            ...(typeof method === 'string' && { mcpMethod: method }),
          }
      }
    return last ?? { effect: this.#default, rule: 'default' }
  }

  #decide(request: PolicyRequest, what: InQuestion): PolicyDecision {
    const matching = this.#rules.filter((r) => ruleMatches(r, request, what))
    const deciding = matching.find((r) => r.effect === 'deny') ?? matching[0]
    if (deciding !== undefined) {
      const isTaskless =
        deciding.effect === 'deny' && request.task === undefined && needsTask(deciding.intent)
      return {
        effect: deciding.effect,
        rule: deciding.label,
        ...(isTaskless && { unmet: { condition: 'taskToken' } as const }),
      }
    }
    if (this.#default === 'allow') return { effect: 'allow', rule: 'default' }
    // Denied by default: say which allow rule the request's intent fell short of, if one.
    const hasProof = request.hasProof === true
    for (const rule of this.#rules) {
      if (rule.effect !== 'allow' || !baseMatches(rule, request, what)) continue
      const unmet = unmetIntent(rule.intent, request.task, hasProof)
      if (unmet !== undefined) return { effect: 'deny', rule: rule.label, unmet }
    }
    return { effect: 'deny', rule: 'default' }
  }
}
