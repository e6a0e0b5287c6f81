import { IdentityError } from './errors.js'
import {
  findIdProblem,
  findIssuanceProblem,
  findPathStart,
  findTrustDomainProblem,
  SCHEME_PREFIX,
} from './spiffe-id-rules.js'

/** A SPIFFE trust domain, such as `example.org`. Immutable; compare with {@link TrustDomain.equals}. */
export class TrustDomain {
  readonly #name: string

  private constructor(name: string) {
    this.#name = name
  }

  /**
   * Parses a bare name (`example.org`) or, when the input contains `:/`, a SPIFFE ID whose
   * trust domain is taken (`spiffe://example.org/x`), as go-spiffe's `TrustDomainFromString` does.
   * The whole ID is validated in that case, path included.
   * @throws ERR_TRUST_DOMAIN_INVALID
   */
  static parse(input: string): TrustDomain {
    if (typeof input !== 'string')
      throw new IdentityError('ERR_TRUST_DOMAIN_INVALID', 'trust domain must be a string')
    if (input.includes(':/')) {
      const problem = findIdProblem(input)
      if (problem !== undefined) throw new IdentityError('ERR_TRUST_DOMAIN_INVALID', problem)
      return new TrustDomain(input.slice(SCHEME_PREFIX.length, findPathStart(input)))
    }
    return TrustDomain.fromValidated(input)
  }

  /**
   * Builds a trust domain from a bare name (no `spiffe://` form). The name is checked again,
   * which costs little (at most 255 ASCII bytes) and keeps every instance valid whoever calls this.
   * @internal Prefer {@link TrustDomain.parse}.
   * @throws ERR_TRUST_DOMAIN_INVALID
   */
  static fromValidated(name: string): TrustDomain {
    const problem = findTrustDomainProblem(name)
    if (problem !== undefined) throw new IdentityError('ERR_TRUST_DOMAIN_INVALID', problem)
    return new TrustDomain(name)
  }

  /** The name, `example.org`. */
  get name(): string {
    return this.#name
  }

  /** The trust domain's own ID string, `spiffe://example.org` (the Workload API map key). */
  idString(): string {
    return SCHEME_PREFIX + this.#name
  }

  /** Why this name must not appear in an issued certificate, or undefined (spec §1, row 24). */
  issuanceProblem(): string | undefined {
    return findIssuanceProblem(this.#name)
  }

  /** True when both name the same trust domain. */
  equals(other: TrustDomain): boolean {
    return this.#name === other.#name
  }

  /** The name, `example.org`. */
  toString(): string {
    return this.#name
  }

  /** The name, so a trust domain serializes as a plain JSON string. */
  toJSON(): string {
    return this.#name
  }
}
