import type { Clock } from '../../lib/core/clock.js'
import { isEntryExpired, type RegistrationEntry } from '../../lib/core/registration-entry.js'
import type { SpiffeId } from '../../lib/core/spiffe-id.js'
import type { EntryStore } from '../datastore/ports.js'
import type { ServerEvents } from '../events.js'

/** The entries one agent may serve, with a lookup by entry id. */
export interface AuthorizedSet {
  /** In discovery order: the agent's direct children first, then theirs, each level by entry id. */
  readonly entries: ReadonlyArray<RegistrationEntry>
  readonly byId: ReadonlyMap<string, RegistrationEntry>
  /** The earliest expiry among `entries`; the set must be computed again from then on. */
  readonly validUntilMs: number
}

/** What {@link AuthorizedEntries} needs. */
export interface AuthorizedEntriesDeps {
  readonly entries: Pick<EntryStore, 'listByParents'>
  readonly events: Pick<ServerEvents, 'on'>
  readonly clock: Clock
}

/** Agents whose sets are kept; beyond it the cache starts over (agents are few, entries many). */
export const MAX_CACHED_AGENTS = 10_000

/**
 * Computes the registration entries an agent is authorized for: those whose parent is the agent, or
 * the SPIFFE ID of an entry already authorized for it (an alias), transitively — a breadth-first walk
 * over `listByParents` from the agent ID that skips expired entries and visits each ID once, so a
 * cycle of entries ends the walk. Results are cached per agent until the next 'entries-changed' event
 * or the first expiry among them.
 */
export class AuthorizedEntries {
  readonly #deps: AuthorizedEntriesDeps
  /** Cleared on every change, so a walk that raced a change is never kept beyond its own callers. */
  readonly #cache = new Map<string, Promise<AuthorizedSet>>()
  readonly #unsubscribe: () => void

  constructor(deps: AuthorizedEntriesDeps) {
    this.#deps = deps
    this.#unsubscribe = deps.events.on('entries-changed', () => this.invalidate())
  }

  /**
   * The agent's authorized set, from the cache when it is still current.
   * @throws ERR_DATASTORE_IO
   */
  async forAgent(agentId: SpiffeId): Promise<AuthorizedSet> {
    const key = agentId.toString()
    const cached = this.#cache.get(key)
    if (cached) {
      const set = await cached
      if (this.#deps.clock.nowMs() < set.validUntilMs) return set
      if (this.#cache.get(key) === cached) this.#cache.delete(key)
    }
    return this.#compute(key, agentId)
  }

  /** Forgets every cached set (called on 'entries-changed'). */
  invalidate(): void {
    this.#cache.clear()
  }

  /** Stops following entry changes. */
  close(): void {
    this.#unsubscribe()
    this.invalidate()
  }

  #compute(key: string, agentId: SpiffeId): Promise<AuthorizedSet> {
    const pending = computeAuthorizedSet(this.#deps.entries, agentId, this.#deps.clock.nowMs())
    if (this.#cache.size >= MAX_CACHED_AGENTS) this.#cache.clear()
    this.#cache.set(key, pending)
    pending.catch(() => {
      if (this.#cache.get(key) === pending) this.#cache.delete(key)
    })
    return pending
  }
}

/**
 * One uncached walk: the entries authorized for `agentId` at `nowMs` (see {@link AuthorizedEntries}).
 * @throws ERR_DATASTORE_IO
 */
export async function computeAuthorizedSet(
  store: Pick<EntryStore, 'listByParents'>,
  agentId: SpiffeId,
  nowMs: number,
): Promise<AuthorizedSet> {
  const seenIds = new Set<string>([agentId.toString()])
  const byId = new Map<string, RegistrationEntry>()
  let validUntilMs = Number.POSITIVE_INFINITY
  let frontier: SpiffeId[] = [agentId]
  while (frontier.length > 0) {
    const next: SpiffeId[] = []
    for (const entry of await store.listByParents(frontier)) {
      if (byId.has(entry.id) || isEntryExpired(entry, nowMs)) continue
      byId.set(entry.id, entry)
      if (entry.expiresAtMs !== undefined) validUntilMs = Math.min(validUntilMs, entry.expiresAtMs)
      const id = entry.spiffeId.toString()
      if (!seenIds.has(id)) {
        seenIds.add(id)
        next.push(entry.spiffeId)
      }
    }
    frontier = next
  }
  return { entries: [...byId.values()], byId, validUntilMs }
}
