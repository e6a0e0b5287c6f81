import type { SpiffeBundle } from '../../lib/core/bundle/spiffe-bundle.js'
import type { Clock } from '../../lib/core/clock.js'
import { isEntryExpired, type RegistrationEntry } from '../../lib/core/registration-entry.js'
import { type Revocation, RevocationList } from '../../lib/core/revocation.js'
import { type Selector, selectorsAdmit } from '../../lib/core/selector.js'
import type { WorkloadIdentities, WorkloadJwt } from '../workload-api/ports.js'
import { JwtCache } from './jwt-cache.js'
import type { KeyFactory, SigningServer } from './ports.js'
import { SvidCache, type X509View } from './svid-cache.js'
import { type TrustBundleSnapshot, TrustBundles } from './trust-bundles.js'
import { WitCache, type WitView } from './wit-cache.js'

/** What the agent cache needs. */
export interface AgentCacheDeps {
  readonly clock: Clock
  readonly server: SigningServer
  readonly generateKey: KeyFactory
  readonly onError?: (err: unknown, entryId?: string) => void
}

/**
 * Everything the agent serves to workloads: the authorized entries and bundles from the server's sync
 * stream, the X509-SVIDs signed for them, and cached JWT-SVIDs. It is the Workload API's
 * {@link WorkloadIdentities}; every change is announced to the open streams.
 */
export class AgentCache implements WorkloadIdentities {
  readonly #clock: Clock
  readonly #svids: SvidCache
  readonly #jwts: JwtCache
  readonly #wits: WitCache
  readonly #bundles = new TrustBundles()
  readonly #listeners = new Set<() => void>()
  #revocations = RevocationList.EMPTY

  constructor(deps: AgentCacheDeps) {
    this.#clock = deps.clock
    this.#svids = new SvidCache({ ...deps, onChange: () => this.#notify() })
    this.#jwts = new JwtCache(deps.clock, deps.server)
    this.#wits = new WitCache({ ...deps, onChange: () => this.#notify() })
  }

  /** Applies one sync snapshot from the server; resolves once missing SVIDs are signed. */
  async applySnapshot(
    entries: ReadonlyArray<RegistrationEntry>,
    own: SpiffeBundle,
    federated: ReadonlyArray<SpiffeBundle>,
  ): Promise<void> {
    this.#bundles.set(own, federated)
    this.#jwts.retain(new Set(entries.map((e) => e.id)))
    this.#wits.retain(new Set(entries.map((e) => e.id)))
    const signing = this.#svids.setEntries(entries)
    // Entries or bundles may have changed: streams recompute and send only what differs.
    this.#notify()
    await signing
  }

  /**
   * Takes the server's revocations (DESIGN §11): served to verifiers, and every cached SVID they
   * cover is replaced at once (JWT-SVIDs are minted anew on the next request). Resolves once the
   * replacements are signed.
   */
  async applyRevocations(revocations: ReadonlyArray<Revocation>): Promise<void> {
    const list = RevocationList.of(revocations).prune(this.#clock.nowMs())
    this.#revocations = list
    this.#jwts.dropRevoked(list)
    this.#notify()
    await this.#svids.rotateRevoked(list)
  }

  /** The revocations kept now (those past their keep-until time left out). */
  revocations(): RevocationList {
    const pruned = this.#revocations.prune(this.#clock.nowMs())
    this.#revocations = pruned
    return pruned
  }

  /** Rotates SVIDs that are due (call periodically). */
  rotate(): Promise<void> {
    this.#wits.refreshDue()
    return this.#svids.reconcile()
  }

  /** True once the first snapshot arrived. */
  get isSynced(): boolean {
    return this.#bundles.snapshot !== undefined
  }

  x509For(selectors: ReadonlyArray<Selector>): X509View {
    return this.#svids.viewFor(selectors)
  }

  entriesFor(selectors: ReadonlyArray<Selector>): ReadonlyArray<RegistrationEntry> {
    const nowMs = this.#clock.nowMs()
    return this.#svids.entries.filter(
      (e) => !isEntryExpired(e, nowMs) && selectorsAdmit(e.selectors, selectors),
    )
  }

  async jwtFor(entry: RegistrationEntry, audience: ReadonlyArray<string>): Promise<WorkloadJwt> {
    const minted = await this.#jwts.fetch(entry, audience)
    return { entry, token: minted.token, expiresAtMs: minted.expiresAtMs }
  }

  witsFor(entries: ReadonlyArray<RegistrationEntry>): WitView {
    return this.#wits.view(entries)
  }

  bundles(): TrustBundleSnapshot | undefined {
    return this.#bundles.snapshot
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  #notify(): void {
    for (const l of this.#listeners) l()
  }
}
