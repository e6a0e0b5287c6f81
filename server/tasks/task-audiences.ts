import { IdentityError } from '../../lib/core/errors.js'
import type { TrustDomain } from '../../lib/core/trust-domain.js'

/** Most audience patterns a server accepts. */
export const MAX_TASK_AUDIENCE_PATTERNS = 256

/** An audience pattern: 1 to 512 characters, no spaces or control characters; `*` a wildcard. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: they are what is refused
const PATTERN = /^[^\s\u0000-\u001f\u007f]{1,512}$/

/**
 * The audiences a task token may name (issue 8, "unknown audiences"). With no pattern configured
 * every audience is accepted (as for JWT-SVIDs, whose audiences SPIRE never restricts), and the
 * server warns at start. With patterns (`--task-audience`, repeatable): the SPIFFE IDs of the own
 * trust domain (`spiffe://<td>/…`), plus every audience matching a pattern exactly or where `*`
 * stands for any run of characters but `/` and `**` for any run at all (`spiffe://td/tools/*`,
 * `https://*.example.com`, `https://api.example.com/**`): a host wildcard never reaches into the
 * path, so `https://*.example.com` does not match `https://evil.test/.example.com`.
 */
export class TaskAudiences {
  readonly #patterns: ReadonlyArray<string>
  readonly #regexps: ReadonlyArray<RegExp>

  private constructor(patterns: ReadonlyArray<string>, trustDomain: TrustDomain) {
    this.#patterns = patterns
    const own = `spiffe://${trustDomain.name}/**`
    this.#regexps = patterns.length === 0 ? [] : [own, ...patterns].map(compilePattern)
  }

  /** @throws ERR_CONFIG_INVALID when a pattern is empty, has spaces, or there are too many */
  static parse(patterns: ReadonlyArray<string>, trustDomain: TrustDomain): TaskAudiences {
    if (patterns.length > MAX_TASK_AUDIENCE_PATTERNS)
      throw new IdentityError('ERR_CONFIG_INVALID', `at most ${MAX_TASK_AUDIENCE_PATTERNS} task audiences`)
    for (const p of patterns)
      if (!PATTERN.test(p))
        throw new IdentityError('ERR_CONFIG_INVALID', `task audience "${p}" is empty or has spaces`)
    return new TaskAudiences([...new Set(patterns)], trustDomain)
  }

  /** True when no pattern is configured: any audience is accepted. */
  get isOpen(): boolean {
    return this.#patterns.length === 0
  }

  /** The audiences of `audiences` that no pattern allows, in their order. */
  unknown(audiences: ReadonlyArray<string>): string[] {
    if (this.isOpen) return []
    return audiences.filter((a) => !this.#regexps.some((r) => r.test(a)))
  }

  /**
   * @throws ERR_TASK_AUDIENCE_UNKNOWN naming the first audiences that no pattern allows
   */
  require(audiences: ReadonlyArray<string>): void {
    const unknown = this.unknown(audiences)
    if (unknown.length > 0)
      throw new IdentityError(
        'ERR_TASK_AUDIENCE_UNKNOWN',
        `this server issues no task token for audience ${unknown.slice(0, 4).join(', ')} (see --task-audience)`,
      )
  }
}

/** `**` any run of characters, `*` any run without `/`, everything else literally. */
function compilePattern(pattern: string): RegExp {
  const body = pattern
    .split('**')
    .map((part) => part.split('*').map(escapeRegExp).join('[^/]*'))
    .join('.*')
  return new RegExp(`^${body}$`, 's')
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
