import type { Clock } from '../../lib/core/clock.js'
import { IdentityError, isIdentityError } from '../../lib/core/errors.js'
import type { TrustDomain } from '../../lib/core/trust-domain.js'
import { createGeneration, generateP256Key, type KeyGeneration, newKeyId } from './key-generation.js'
import { decodeJournal, encodeJournal, type KeyJournalStore } from './key-journal.js'
import { KeySlots, lifetimeOf } from './key-slots.js'
import { planRotation } from './rotation-plan.js'

/** What the rotator needs. */
export interface RotatorDeps {
  readonly trustDomain: TrustDomain
  readonly clock: Clock
  readonly journal: KeyJournalStore
  /** Lifetime of each CA / JWT key generation. */
  readonly caTtlMs: number
  /** Key factory; defaults to fresh P-256 keys. */
  readonly generateKey?: () => Promise<import('node:crypto').KeyObject>
  /** Told about every rotation step taken (for logs and audit). */
  readonly onEvent?: (event: RotationEvent) => void
}

/** A rotation step that happened. */
export interface RotationEvent {
  /** `replaced`: a missing or unreadable journal was set aside, as asked ({@link RotatorStartOptions}). */
  readonly kind: 'bootstrapped' | 'prepared' | 'activated' | 'pruned' | 'loaded' | 'replaced'
  readonly generationId?: string
  readonly notAfterMs?: number
  /** Why the journal was replaced (kind `replaced`). */
  readonly reason?: string
}

/** Options of {@link CaRotator.start}. */
export interface RotatorStartOptions {
  /**
   * True when the store that holds the journal was just created (a fresh install): then, and only
   * then, a missing journal means "make the first CA".
   */
  readonly isFresh: boolean
  /**
   * Start a new CA when the journal is missing or unreadable instead of refusing to start
   * (`tessera server run --new-ca`). Every agent and workload must then get the new bundle.
   */
  readonly replaceBroken?: boolean
}

const NEW_CA_HINT =
  'restore the datastore from a backup, or start with --new-ca to create a new CA (every agent and workload must then be given the new trust bundle)'

/**
 * Owns the trust domain's key generations: loads them from the journal, prepares, activates and prunes
 * them on the schedule of {@link planRotation}, persists every change before using it, and tells
 * listeners when the published bundle changes. Time comes only from the injected clock; the caller
 * drives {@link CaRotator.rotate} (on a timer in production, by hand in tests).
 */
export class CaRotator {
  readonly #deps: RotatorDeps
  #slots = new KeySlots([])
  readonly #listeners = new Set<(slots: KeySlots) => void>()
  #running: Promise<void> = Promise.resolve()

  constructor(deps: RotatorDeps) {
    this.#deps = deps
  }

  /**
   * Loads persisted generations, then brings them up to date. A missing journal is a fresh install
   * only when `options.isFresh` says so; otherwise it, like an unreadable one, is refused, never
   * silently replaced by a new CA (unless `options.replaceBroken`).
   * @throws ERR_KEY_STORE_CORRUPT when the journal is missing (not fresh) or unreadable
   * @throws ERR_KEY_STORE_IO when the journal cannot be read or saved
   */
  async start(options: RotatorStartOptions): Promise<void> {
    const doc = await this.#deps.journal.load()
    try {
      if (doc === undefined && !options.isFresh)
        throw new IdentityError('ERR_KEY_STORE_CORRUPT', `the CA key journal is missing: ${NEW_CA_HINT}`)
      if (doc !== undefined) {
        this.#slots = await this.#withWitKeys(new KeySlots(decodeJournal(this.#deps.trustDomain, doc)))
        this.#deps.onEvent?.({ kind: 'loaded', generationId: this.#slots.active?.id })
      }
    } catch (err) {
      if (!(options.replaceBroken === true && isIdentityError(err, 'ERR_KEY_STORE_CORRUPT'))) throw err
      this.#deps.onEvent?.({ kind: 'replaced', reason: err.message })
    }
    await this.rotate()
  }

  /** The current generations. */
  get slots(): KeySlots {
    return this.#slots
  }

  /** The generation that signs now. @throws ERR_CA_NOT_READY before the first rotation */
  active(): KeyGeneration {
    const gen = this.#slots.active
    if (!gen) throw new IdentityError('ERR_CA_NOT_READY', 'no active signing key yet')
    return gen
  }

  /** Calls `listener` with the new slots whenever the published keys change. Returns an unsubscribe function. */
  onChange(listener: (slots: KeySlots) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Applies every rotation step due now. Calls are serialized. */
  rotate(): Promise<void> {
    const next = this.#running.then(() => this.#rotateOnce())
    this.#running = next.catch(() => undefined)
    return next
  }

  async #rotateOnce(): Promise<void> {
    const before = this.#slots
    let slots = before.prune(this.#deps.clock.nowMs())
    if (slots !== before) this.#deps.onEvent?.({ kind: 'pruned' })
    for (let step = 0; step < 3; step++) {
      const nowMs = this.#deps.clock.nowMs()
      const plan = planRotation(lifetimeOf(slots.active), lifetimeOf(slots.prepared), nowMs)
      if (plan.activate) {
        slots = slots.activatePrepared()
        this.#deps.onEvent?.({
          kind: 'activated',
          generationId: slots.active?.id,
          notAfterMs: slots.active?.x509Ca.notAfterMs,
        })
      } else if (plan.bootstrap || plan.prepare) {
        const gen = await this.#newGeneration(nowMs, plan.bootstrap ? 'active' : 'prepared')
        slots = slots.add(gen)
        this.#deps.onEvent?.({
          kind: plan.bootstrap ? 'bootstrapped' : 'prepared',
          generationId: gen.id,
          notAfterMs: gen.x509Ca.notAfterMs,
        })
      } else {
        break
      }
    }
    if (slots === before) return
    await this.#deps.journal.save(encodeJournal(this.#deps.trustDomain, slots.generations))
    this.#slots = slots
    if (!slots.publishesSameAs(before)) for (const l of this.#listeners) l(slots)
  }

  /**
   * Gives each live generation saved before WIT-SVIDs existed a WIT key that expires with it, and
   * saves the journal, so that an upgraded server issues WITs at once rather than after a rotation.
   */
  async #withWitKeys(slots: KeySlots): Promise<KeySlots> {
    if (slots.generations.every((g) => g.witKey !== undefined)) return slots
    const generate = this.#deps.generateKey ?? generateP256Key
    const generations = await Promise.all(
      slots.generations.map(async (g) =>
        g.witKey !== undefined
          ? g
          : {
              ...g,
              witKey: { kid: newKeyId(), privateKey: await generate(), notAfterMs: g.jwtKey.notAfterMs },
            },
      ),
    )
    await this.#deps.journal.save(encodeJournal(this.#deps.trustDomain, generations))
    return new KeySlots(generations)
  }

  #newGeneration(nowMs: number, state: 'active' | 'prepared'): Promise<KeyGeneration> {
    return createGeneration({
      trustDomain: this.#deps.trustDomain,
      nowMs,
      ttlMs: this.#deps.caTtlMs,
      state,
      generateKey: this.#deps.generateKey,
    })
  }
}
