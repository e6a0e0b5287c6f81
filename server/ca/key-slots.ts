import type { Certificate } from '../../lib/core/x509/certificate.js'
import type { JwtSigningKey, KeyGeneration } from './key-generation.js'
import type { KeyLifetime } from './rotation-plan.js'

/**
 * The set of live key generations: at most one active, at most one prepared, any number retired
 * (kept so that SVIDs they signed keep verifying until they expire). Immutable: every change returns a new set.
 */
export class KeySlots {
  readonly generations: ReadonlyArray<KeyGeneration>

  constructor(generations: ReadonlyArray<KeyGeneration>) {
    this.generations = [...generations]
  }

  get active(): KeyGeneration | undefined {
    return this.generations.find((g) => g.state === 'active')
  }

  get prepared(): KeyGeneration | undefined {
    return this.generations.find((g) => g.state === 'prepared')
  }

  /** Adds a generation; adding an active one retires the current active. */
  add(gen: KeyGeneration): KeySlots {
    const rest = gen.state === 'active' ? this.#retireActive() : this.generations
    return new KeySlots([...rest, gen])
  }

  /** Makes the prepared generation active and retires the old active one. */
  activatePrepared(): KeySlots {
    const prepared = this.prepared
    if (!prepared) return this
    const others = this.#retireActive().filter((g) => g !== prepared)
    return new KeySlots([...others, { ...prepared, state: 'active' }])
  }

  /** Drops every generation whose keys have expired by `nowMs`. */
  prune(nowMs: number): KeySlots {
    const kept = this.generations.filter((g) => g.x509Ca.notAfterMs > nowMs)
    return kept.length === this.generations.length ? this : new KeySlots(kept)
  }

  /** CA certificates to publish in the X.509 bundle: every live generation, oldest first. */
  x509Authorities(): Certificate[] {
    return this.generations.map((g) => g.x509Ca.certificate)
  }

  /** JWT keys to publish in the JWT bundle: every live generation, oldest first. */
  jwtAuthorities(): JwtSigningKey[] {
    return this.generations.map((g) => g.jwtKey)
  }

  /** WIT keys to publish with `use: wit-svid`: every live generation that has one, oldest first. */
  witAuthorities(): JwtSigningKey[] {
    return this.generations.flatMap((g) => (g.witKey === undefined ? [] : [g.witKey]))
  }

  /** True when the published key material differs between the two sets. */
  publishesSameAs(other: KeySlots): boolean {
    const ids = (s: KeySlots) => s.generations.map((g) => g.id).join(',')
    return ids(this) === ids(other)
  }

  #retireActive(): KeyGeneration[] {
    return this.generations.map((g) => (g.state === 'active' ? { ...g, state: 'retired' as const } : g))
  }
}

/** The lifetime of a generation, for the rotation plan. */
export function lifetimeOf(gen: KeyGeneration | undefined): KeyLifetime | undefined {
  if (!gen) return undefined
  return { notBeforeMs: gen.createdAtMs, notAfterMs: gen.x509Ca.notAfterMs }
}
