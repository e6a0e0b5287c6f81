import { IdentityError } from '../core/errors.js'
import {
  compileMcpMethodPattern,
  compilePurposePattern,
  compileScope,
  denyIntentMatches,
  type IntentConditions,
  unmetIntent,
} from './policy-intent.js'
import {
  compileIdPattern,
  compilePathPattern,
  compileToolPattern,
  type Matcher,
  normalizeMethod,
  type PathCase,
  pathPatternBase,
} from './policy-pattern.js'
import type { PolicyEffect, PolicyRequest } from './policy-request.js'

/** One rule of a policy, compiled. */
export interface CompiledRule {
  readonly label: string
  readonly effect: PolicyEffect
  readonly ids: ReadonlyArray<Matcher> | undefined
  readonly methods: ReadonlySet<string> | undefined
  readonly paths: ReadonlyArray<Matcher> | undefined
  readonly tools: ReadonlyArray<Matcher> | undefined
  readonly mcpMethods: ReadonlyArray<Matcher> | undefined
  readonly intent: IntentConditions
}

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
export const NO_TOOL = Symbol('no tool')
export const UNKNOWN_TOOLS = Symbol('unknown tools')
export type ToolInQuestion = string | typeof NO_TOOL | typeof UNKNOWN_TOOLS
/** The MCP method value of a request that calls none, and of one whose methods could not be read. */
export const NO_METHOD = Symbol('no MCP method')
export const UNKNOWN_METHODS = Symbol('unknown MCP methods')
export type MethodInQuestion = string | typeof NO_METHOD | typeof UNKNOWN_METHODS

/** True for a plain JSON object (not null, not an array). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** True for `allow` or `deny`. */
export function isEffect(value: unknown): value is PolicyEffect {
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
export interface CompileContext {
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

/** Compiles one rule of a policy file, pushing each problem found onto `ctx.problems`; undefined when it is not an object. */
export function compileRule(value: unknown, where: string, ctx: CompileContext): CompiledRule | undefined {
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
export interface InQuestion {
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
export function baseMatches(rule: CompiledRule, request: PolicyRequest, what: InQuestion): boolean {
  if (rule.ids && !rule.ids.some((m) => m(request.id.toString()))) return false
  if (rule.methods && !rule.methods.has(request.method.toUpperCase())) return false
  if (rule.paths && !rule.paths.some((m) => m(request.path))) return false
  if (!listMatches(rule.tools, what.tool, NO_TOOL, UNKNOWN_TOOLS, rule.effect)) return false
  return listMatches(rule.mcpMethods, what.method, NO_METHOD, UNKNOWN_METHODS, rule.effect)
}

/** True when the rule matches the request for one tool and MCP method, its intent conditions included. */
export function ruleMatches(rule: CompiledRule, request: PolicyRequest, what: InQuestion): boolean {
  if (!baseMatches(rule, request, what)) return false
  const hasProof = request.hasProof === true
  return rule.effect === 'allow'
    ? unmetIntent(rule.intent, request.task, hasProof) === undefined
    : denyIntentMatches(rule.intent, request.task, hasProof)
}

/** The values to decide a request for: each one listed, else the `none` or `unknown` marker. */
export function inQuestion<N extends symbol, U extends symbol>(
  list: ReadonlyArray<string> | undefined,
  none: N,
  unknown: U,
): ReadonlyArray<string | N | U> {
  if (list === undefined) return [unknown]
  return list.length === 0 ? [none] : list
}
