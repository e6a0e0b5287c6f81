import type { RegistrationEntry } from '../../lib/core/registration-entry.js'
import type { RevocationList } from '../../lib/core/revocation.js'
import type { Selector } from '../../lib/core/selector.js'
import type { CachedX509Svid, X509View } from '../manager/svid-cache.js'
import type { TrustBundleSnapshot } from '../manager/trust-bundles.js'
import type { WitView } from '../manager/wit-cache.js'

/** A JWT-SVID handed to a workload. */
export interface WorkloadJwt {
  readonly entry: RegistrationEntry
  readonly token: string
  readonly expiresAtMs: number
}

/**
 * What the Workload API needs from the agent's caches (declared here, where it is used; the agent's
 * manager implements it).
 */
export interface WorkloadIdentities {
  /** X509-SVIDs for a workload with these selectors. */
  x509For(selectors: ReadonlyArray<Selector>): X509View
  /** Entries that admit a workload with these selectors, oldest first. */
  entriesFor(selectors: ReadonlyArray<Selector>): ReadonlyArray<RegistrationEntry>
  /** A JWT-SVID for one entry with exactly these audiences. */
  jwtFor(entry: RegistrationEntry, audience: ReadonlyArray<string>): Promise<WorkloadJwt>
  /** WIT-SVIDs of these entries (minting those missing or due; `onChange` fires when one arrives). */
  witsFor(entries: ReadonlyArray<RegistrationEntry>): WitView
  /** Own and federated bundles, or undefined before the first sync. */
  bundles(): TrustBundleSnapshot | undefined
  /** The revocations the server pushed, for verifiers (DESIGN §11). */
  revocations(): RevocationList
  /** Subscribes to every change of SVIDs, entries, bundles or revocations; returns the unsubscribe function. */
  onChange(listener: () => void): () => void
}

export type { CachedX509Svid, X509View }
