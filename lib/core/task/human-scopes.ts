import { IdentityError } from '../errors.js'

/** Most scope patterns a server marks as needing a human. */
export const MAX_HUMAN_SCOPE_PATTERNS = 256

/** A scope pattern: an OAuth scope token in which `*` stands for any run of characters (none too). */
const PATTERN = /^[\x21\x23-\x5B\x5D-\x7E]{1,128}$/

/**
 * Which scopes need a human's approval before a task may hold them (DESIGN §11): scopes matching one
 * of the patterns, where `*` matches any run of characters (`deploy:*`, `*:write`, `*`).
 * @example
 * const human = HumanScopes.parse(['repo:write', 'deploy:*'])
 * human.matching(['repo:read', 'deploy:prod']) // ['deploy:prod']
 */
export class HumanScopes {
  readonly #patterns: ReadonlyArray<string>
  readonly #regexps: ReadonlyArray<RegExp>

  private constructor(patterns: ReadonlyArray<string>) {
    this.#patterns = patterns
    this.#regexps = patterns.map((p) => new RegExp(`^${p.split('*').map(escapeRegExp).join('.*')}$`, 's'))
  }

  /** @throws ERR_CONFIG_INVALID when a pattern is not a scope token (with `*`) or there are too many */
  static parse(patterns: ReadonlyArray<string>): HumanScopes {
    if (patterns.length > MAX_HUMAN_SCOPE_PATTERNS)
      throw new IdentityError('ERR_CONFIG_INVALID', `at most ${MAX_HUMAN_SCOPE_PATTERNS} human scopes`)
    for (const p of patterns)
      if (!PATTERN.test(p))
        throw new IdentityError(
          'ERR_CONFIG_INVALID',
          `human scope "${p}" is not a scope (with * as wildcard)`,
        )
    return new HumanScopes([...new Set(patterns)])
  }

  /** True when no scope needs a human. */
  get isEmpty(): boolean {
    return this.#patterns.length === 0
  }

  /** The patterns, as given (deduplicated). */
  get patterns(): ReadonlyArray<string> {
    return this.#patterns
  }

  /** The scopes of `scopes` that need a human, in their order. */
  matching(scopes: ReadonlyArray<string>): string[] {
    return scopes.filter((s) => this.#regexps.some((r) => r.test(s)))
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
