import type { SpiffeBundle } from '../../lib/core/bundle/spiffe-bundle.js'
import type { TrustDomain } from '../../lib/core/trust-domain.js'

/** The bundles an agent holds: its own trust domain's and the federated ones its entries need. */
export interface TrustBundleSnapshot {
  readonly own: SpiffeBundle
  /** By trust domain name. */
  readonly federated: ReadonlyMap<string, SpiffeBundle>
}

/** The agent's current trust bundles, replaced as a whole by every sync snapshot. */
export class TrustBundles {
  #snapshot: TrustBundleSnapshot | undefined

  /** The current bundles, or undefined before the first sync. */
  get snapshot(): TrustBundleSnapshot | undefined {
    return this.#snapshot
  }

  /**
   * Replaces the bundles; returns true when anything changed. An unchanged bundle keeps its previous
   * object, so consumers may key caches on bundle identity.
   */
  set(own: SpiffeBundle, federated: ReadonlyArray<SpiffeBundle>): boolean {
    const previous = this.#snapshot
    const keep = (b: SpiffeBundle, old: SpiffeBundle | undefined) => (old?.equals(b) ? old : b)
    const next = {
      own: keep(own, previous?.own),
      federated: new Map(
        federated.map((b) => [b.trustDomain.name, keep(b, previous?.federated.get(b.trustDomain.name))]),
      ),
    }
    this.#snapshot = next
    return !previous || !sameBundles(previous, next)
  }

  /** The federated bundles among `trustDomains`, in the order given (unknown ones skipped). */
  federatedFor(trustDomains: Iterable<TrustDomain>): SpiffeBundle[] {
    const out: SpiffeBundle[] = []
    for (const td of trustDomains) {
      const b = this.#snapshot?.federated.get(td.name)
      if (b && !out.includes(b)) out.push(b)
    }
    return out
  }
}

function sameBundles(a: TrustBundleSnapshot, b: TrustBundleSnapshot): boolean {
  if (a.own !== b.own || a.federated.size !== b.federated.size) return false
  for (const [name, bundle] of a.federated) if (b.federated.get(name) !== bundle) return false
  return true
}

const ids = new WeakMap<SpiffeBundle, number>()
let nextId = 1

/** A process-unique number per bundle object; with unchanged bundles kept, equal numbers mean equal content. */
export function bundleKey(bundle: SpiffeBundle): number {
  let id = ids.get(bundle)
  if (id === undefined) {
    id = nextId++
    ids.set(bundle, id)
  }
  return id
}
