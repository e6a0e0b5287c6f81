import { readFileSync } from 'node:fs'
import { ConfigError } from '../core/config-error.js'
import { IdentityError } from '../core/errors.js'
import type { SpiffeId } from '../core/spiffe-id.js'
import {
  compileMcpMethodPattern,
  compilePurposePattern,
  compileScope,
  denyIntentMatches,
  type IntentConditions,
  needsTask,
  type PolicyTask,
  type UnmetIntent,
  unmetIntent,
} from './policy-intent.js'
import {
  caseConfusableBase,
  compileIdPattern,
  compilePathPattern,
  compileToolPattern,
  type Matcher,
  normalizeMethod,
  type PathCase,
  pathKey,
  pathPatternBase,
} from './policy-pattern.js'

export type { PolicyTask, UnmetIntent } from './policy-intent.js'
export type { PathCase } from './policy-pattern.js'

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

interface CompiledRule {
  readonly label: string
  readonly effect: PolicyEffect
  readonly ids: ReadonlyArray<Matcher> | undefined
  readonly methods: ReadonlySet<string> | undefined
  readonly paths: ReadonlyArray<Matcher> | undefined
  readonly tools: ReadonlyArray<Matcher> | undefined
  readonly mcpMethods: ReadonlyArray<Matcher> | undefined
  readonly intent: IntentConditions
}

const TOP_KEYS: ReadonlySet<string> = new Set(['rules', 'default', 'description', 'pathCase'])
const RULE_KEYS: ReadonlySet<string> = new Set([
  'name',
  'description',
  'effect',
  'spiffeIds',
  'methods',
  'paths',
  'tools',
  'mcpMethods',
  'scopes',
  'purpose',
  'proof',
])
/** The tool value of a request that calls none, and of one whose tools could not be read. */
const NO_TOOL = Symbol('no tool')
const UNKNOWN_TOOLS = Symbol('unknown tools')
type ToolInQuestion = string | typeof NO_TOOL | typeof UNKNOWN_TOOLS
/** The MCP method value of a request that calls none, and of one whose methods could not be read. */
const NO_METHOD = Symbol('no MCP method')
const UNKNOWN_METHODS = Symbol('unknown MCP methods')
type MethodInQuestion = string | typeof NO_METHOD | typeof UNKNOWN_METHODS

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isEffect(value: unknown): value is PolicyEffect {
  return value === 'allow' || value === 'deny'
}

/** Compiles every item of an optional, non-empty list; each bad item is one problem. */
function compileList<T>(value: unknown, where: string, compile: (v: unknown) => T, problems: string[]) {
  if (value === undefined) return undefined
  if (!Array.isArray(value) || value.length === 0) {
    problems.push(`${where}: must be a non-empty array`)
    return undefined
  }
  return value.flatMap((item: unknown, index) => {
    try {
      return [compile(item)]
    } catch (err) {
      if (!(err instanceof IdentityError)) throw err
      problems.push(`${where}[${index}]: ${err.message}`)
      return []
    }
  })
}

/** What every rule of one policy is compiled with. */
interface CompileContext {
  readonly pathCase: PathCase
  readonly problems: string[]
  /** The fixed parts of every path pattern, for the letter-case check. */
  readonly pathBases: Set<string>
}

function collectBases(paths: unknown, bases: Set<string>): void {
  if (!Array.isArray(paths)) return
  for (const pattern of paths) {
    try {
      bases.add(pathPatternBase(pattern))
    } catch {
      // reported by compileList
    }
  }
}

function compileRule(value: unknown, where: string, ctx: CompileContext): CompiledRule | undefined {
  const { problems, pathCase } = ctx
  if (!isObject(value)) {
    problems.push(`${where}: must be an object`)
    return undefined
  }
  for (const key of Object.keys(value)) if (!RULE_KEYS.has(key)) problems.push(`${where}.${key}: unknown key`)
  const { effect, name } = value
  if (!isEffect(effect)) problems.push(`${where}.effect: must be "allow" or "deny"`)
  if (name !== undefined && (typeof name !== 'string' || name.length === 0))
    problems.push(`${where}.name: must be a non-empty string`)
  const methods = compileList(value['methods'], `${where}.methods`, normalizeMethod, problems)
  collectBases(value['paths'], ctx.pathBases)
  const { purpose, proof } = value
  if (proof !== undefined && typeof proof !== 'boolean')
    problems.push(`${where}.proof: must be true or false`)
  let purposeMatcher: Matcher | undefined
  try {
    purposeMatcher = purpose === undefined ? undefined : compilePurposePattern(purpose)
  } catch (err) {
    if (!(err instanceof IdentityError)) throw err
    problems.push(`${where}.purpose: ${err.message}`)
  }
  const intent: IntentConditions = {
    scopes: compileList(value['scopes'], `${where}.scopes`, compileScope, problems),
    purpose: purposeMatcher,
    proof: typeof proof === 'boolean' ? proof : undefined,
  }
  return {
    label: typeof name === 'string' && name.length > 0 ? name : where,
    effect: isEffect(effect) ? effect : 'deny',
    ids: compileList(value['spiffeIds'], `${where}.spiffeIds`, compileIdPattern, problems),
    methods: methods && new Set(methods),
    paths: compileList(value['paths'], `${where}.paths`, (p) => compilePathPattern(p, pathCase), problems),
    tools: compileList(value['tools'], `${where}.tools`, compileToolPattern, problems),
    mcpMethods: compileList(value['mcpMethods'], `${where}.mcpMethods`, compileMcpMethodPattern, problems),
    intent,
  }
}

/** What one evaluation of the rules is about: one tool and one MCP method of the request. */
interface InQuestion {
  readonly tool: ToolInQuestion
  readonly method: MethodInQuestion
}

function listMatches<T extends string | symbol>(
  matchers: ReadonlyArray<Matcher> | undefined,
  value: T,
  none: T,
  unknown: T,
  effect: PolicyEffect,
): boolean {
  if (matchers === undefined) return true
  if (value === none) return false
  if (value === unknown) return effect === 'deny'
  return matchers.some((m) => m(value as string))
}

/** Every condition of the rule but the intent ones (scopes, purpose, proof). */
function baseMatches(rule: CompiledRule, request: PolicyRequest, what: InQuestion): boolean {
  if (rule.ids && !rule.ids.some((m) => m(request.id.toString()))) return false
  if (rule.methods && !rule.methods.has(request.method.toUpperCase())) return false
  if (rule.paths && !rule.paths.some((m) => m(request.path))) return false
  if (!listMatches(rule.tools, what.tool, NO_TOOL, UNKNOWN_TOOLS, rule.effect)) return false
  return listMatches(rule.mcpMethods, what.method, NO_METHOD, UNKNOWN_METHODS, rule.effect)
}

function ruleMatches(rule: CompiledRule, request: PolicyRequest, what: InQuestion): boolean {
  if (!baseMatches(rule, request, what)) return false
  const hasProof = request.hasProof === true
  return rule.effect === 'allow'
    ? unmetIntent(rule.intent, request.task, hasProof) === undefined
    : denyIntentMatches(rule.intent, request.task, hasProof)
}

function inQuestion<N extends symbol, U extends symbol>(
  list: ReadonlyArray<string> | undefined,
  none: N,
  unknown: U,
): ReadonlyArray<string | N | U> {
  if (list === undefined) return [unknown]
  return list.length === 0 ? [none] : list
}

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
