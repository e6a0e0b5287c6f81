import { JwtBundle } from '../../lib/core/bundle/jwt-bundle.js'
import { SpiffeBundle } from '../../lib/core/bundle/spiffe-bundle.js'
import { X509Bundle } from '../../lib/core/bundle/x509-bundle.js'
import { IdentityError } from '../../lib/core/errors.js'
import type { TrustDomain } from '../../lib/core/trust-domain.js'
import type { KeySlots } from '../ca/key-slots.js'
import type { BundleStore, CommitHooks } from '../datastore/ports.js'
import type { ServerEvents } from '../events.js'

/** Suggested poll interval published in the bundle (SPIRE's default for bundle endpoints: 5 min). */
export const REFRESH_HINT_SECONDS = 300

/** What the bundle service needs. */
export interface BundleServiceDeps {
  readonly trustDomain: TrustDomain
  readonly store: BundleStore
  readonly events: ServerEvents
  /** The CA rotator's current slots and its change feed. */
  readonly keys: { readonly slots: KeySlots; onChange(listener: (slots: KeySlots) => void): () => void }
}

/**
 * The trust domain's own bundle (every live CA certificate, JWT and WIT key, from the rotator) and the
 * federated bundles set by admins. Each change of the own bundle bumps `spiffe_sequence` and is
 * persisted before it is published; every change emits `bundle-changed`.
 */
export class BundleService {
  readonly #deps: BundleServiceDeps
  #own: SpiffeBundle | undefined
  #federated = new Map<string, SpiffeBundle>()
  #unsubscribe: (() => void) | undefined
  #pending: Promise<void> = Promise.resolve()

  constructor(deps: BundleServiceDeps) {
    this.#deps = deps
  }

  /** Loads the stored bundles, brings the own one up to date and follows key rotation. */
  async start(): Promise<void> {
    for (const stored of await this.#deps.store.list()) {
      if (stored.trustDomain.equals(this.#deps.trustDomain)) {
        this.#own = SpiffeBundle.parse(stored.trustDomain, stored.document).with({
          sequence: stored.sequence,
        })
      } else {
        this.#federated.set(stored.trustDomain.name, SpiffeBundle.parse(stored.trustDomain, stored.document))
      }
    }
    await this.#publishOwn(this.#deps.keys.slots)
    this.#unsubscribe = this.#deps.keys.onChange((slots) => {
      this.#pending = this.#pending.then(() => this.#publishOwn(slots)).catch(() => undefined)
    })
  }

  /** Stops following rotation; waits for a pending publication. */
  async stop(): Promise<void> {
    this.#unsubscribe?.()
    await this.#pending
  }

  /** The own trust domain's current bundle. @throws ERR_CA_NOT_READY before start */
  own(): SpiffeBundle {
    if (!this.#own) throw new IdentityError('ERR_CA_NOT_READY', 'the trust domain bundle is not ready')
    return this.#own
  }

  /** The federated bundles, ordered by trust domain name. */
  listFederated(): SpiffeBundle[] {
    return [...this.#federated.values()].sort((a, b) => (a.trustDomain.name < b.trustDomain.name ? -1 : 1))
  }

  /** The federated bundle of `td`, if set. */
  federated(td: TrustDomain): SpiffeBundle | undefined {
    return this.#federated.get(td.name)
  }

  /**
   * Creates or replaces a federated trust domain's bundle; `hooks` run at its commit point (the
   * admin API audits the change there).
   * @throws ERR_TRUST_DOMAIN_INVALID for the own trust domain, or what `hooks.beforeCommit` threw
   */
  async setFederated(bundle: SpiffeBundle, hooks?: CommitHooks<void>): Promise<SpiffeBundle> {
    if (bundle.trustDomain.equals(this.#deps.trustDomain)) {
      throw new IdentityError(
        'ERR_TRUST_DOMAIN_INVALID',
        'the own trust domain bundle is managed by the CA, not set by hand',
      )
    }
    const previous = this.#federated.get(bundle.trustDomain.name)
    const sequence = bundle.sequence ?? (previous?.sequence ?? 0n) + 1n
    const stored = bundle.with({ sequence })
    await this.#deps.store.set(stored.trustDomain, stored.marshal(), sequence, hooks)
    this.#federated.set(stored.trustDomain.name, stored)
    this.#deps.events.emit('bundle-changed')
    return stored
  }

  /** Deletes a federated bundle. @throws ERR_BUNDLE_NOT_FOUND, ERR_TRUST_DOMAIN_INVALID (own) */
  async deleteFederated(td: TrustDomain, hooks?: CommitHooks<void>): Promise<void> {
    if (td.equals(this.#deps.trustDomain))
      throw new IdentityError('ERR_TRUST_DOMAIN_INVALID', 'the own trust domain bundle cannot be deleted')
    await this.#deps.store.delete(td, hooks)
    this.#federated.delete(td.name)
    this.#deps.events.emit('bundle-changed')
  }

  async #publishOwn(slots: KeySlots): Promise<void> {
    const td = this.#deps.trustDomain
    const fresh = SpiffeBundle.of(td, {
      x509: X509Bundle.fromAuthorities(td, slots.x509Authorities()),
      jwt: JwtBundle.fromAuthorities(
        td,
        slots.jwtAuthorities().map((k) => ({ kid: k.kid, key: k.privateKey })),
      ),
      wit: JwtBundle.fromAuthorities(
        td,
        slots.witAuthorities().map((k) => ({ kid: k.kid, key: k.privateKey })),
      ),
      refreshHintSeconds: REFRESH_HINT_SECONDS,
    })
    const current = this.#own
    if (current && sameContent(current, fresh)) return
    const sequence = (current?.sequence ?? 0n) + 1n
    const next = fresh.with({ sequence })
    await this.#deps.store.set(td, next.marshal(), sequence)
    this.#own = next
    this.#deps.events.emit('bundle-changed')
  }
}

function sameContent(a: SpiffeBundle, b: SpiffeBundle): boolean {
  return (
    a.toX509Bundle().equals(b.toX509Bundle()) &&
    a.toJwtBundle().equals(b.toJwtBundle()) &&
    a.toWitBundle().equals(b.toWitBundle())
  )
}
