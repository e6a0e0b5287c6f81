import { readFileSync } from 'node:fs'
import { ConfigError } from '../core/config-error.js'
import { IdentityError } from '../core/errors.js'
import type { SpiffeId } from '../core/spiffe-id.js'
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
}

/** A policy's answer and the rule that gave it. */
export interface PolicyDecision {
  readonly effect: PolicyEffect
  /** The deciding rule's `name`, else `rules[<index>]`; `default` when no rule matched. */
  readonly rule: string
  /** The tool a denial was about, when the request called tools. */
  readonly tool?: string
}

interface CompiledRule {
  readonly label: string
  readonly effect: PolicyEffect
  readonly ids: ReadonlyArray<Matcher> | undefined
  readonly methods: ReadonlySet<string> | undefined
  readonly paths: ReadonlyArray<Matcher> | undefined
  readonly tools: ReadonlyArray<Matcher> | undefined
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
])
/** The tool value of a request that calls none, and of one whose tools could not be read. */
const NO_TOOL = Symbol('no tool')
const UNKNOWN_TOOLS = Symbol('unknown tools')
type ToolInQuestion = string | typeof NO_TOOL | typeof UNKNOWN_TOOLS

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
  return {
    label: typeof name === 'string' && name.length > 0 ? name : where,
    effect: isEffect(effect) ? effect : 'deny',
    ids: compileList(value['spiffeIds'], `${where}.spiffeIds`, compileIdPattern, problems),
    methods: methods && new Set(methods),
    paths: compileList(value['paths'], `${where}.paths`, (p) => compilePathPattern(p, pathCase), problems),
    tools: compileList(value['tools'], `${where}.tools`, compileToolPattern, problems),
  }
}

function ruleMatches(rule: CompiledRule, request: PolicyRequest, tool: ToolInQuestion): boolean {
  if (rule.ids && !rule.ids.some((m) => m(request.id.toString()))) return false
  if (rule.methods && !rule.methods.has(request.method.toUpperCase())) return false
  if (rule.paths && !rule.paths.some((m) => m(request.path))) return false
  if (rule.tools === undefined) return true
  if (tool === NO_TOOL) return false
  if (tool === UNKNOWN_TOOLS) return rule.effect === 'deny'
  return rule.tools.some((m) => m(tool))
}

/**
 * Request-time policy (DESIGN §10): allow and deny rules over SPIFFE ID patterns × methods × paths ×
 * tool names, evaluated on every request. A rule matches when every condition it has matches (a
 * condition left out matches anything). Any matching deny rule wins over every allow rule; with no
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

  /**
   * True when the policy can tell one WebSocket message from another: a rule has a `tools` or a
   * `methods` condition (each message is decided as a `POST` of it to the upgrade's path).
   */
  get decidesMessages(): boolean {
    return this.#rules.some((r) => r.tools !== undefined || r.methods !== undefined)
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
   * Decides a request; with several tools, each is decided and any denial denies the request. A path
   * {@link checkPath} refuses is denied (rule `pathCase`).
   */
  evaluate(request: PolicyRequest): PolicyDecision {
    const keyed = { ...request, path: pathKey(request.path, this.#pathCase) }
    if (this.#pathCase === 'sensitive' && caseConfusableBase(keyed.path, this.#pathBases) !== undefined)
      return { effect: 'deny', rule: 'pathCase' }
    const { tools } = keyed
    if (tools === undefined) return this.#decide(keyed, UNKNOWN_TOOLS)
    if (tools.length === 0) return this.#decide(keyed, NO_TOOL)
    let last: PolicyDecision | undefined
    for (const tool of tools) {
      last = this.#decide(keyed, tool)
      if (last.effect === 'deny') return { ...last, tool }
    }
    return last ?? this.#decide(keyed, NO_TOOL)
  }

  #decide(request: PolicyRequest, tool: ToolInQuestion): PolicyDecision {
    const matching = this.#rules.filter((r) => ruleMatches(r, request, tool))
    const deciding = matching.find((r) => r.effect === 'deny') ?? matching[0]
    return deciding
      ? { effect: deciding.effect, rule: deciding.label }
      : { effect: this.#default, rule: 'default' }
  }
}
