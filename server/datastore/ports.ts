import type { IdentityError } from '../../lib/core/errors.js'
import type { EntryFields, RegistrationEntry } from '../../lib/core/registration-entry.js'
import type { Revocation } from '../../lib/core/revocation.js'
import type { Selector, SelectorMatchMode } from '../../lib/core/selector.js'
import type { SpiffeId } from '../../lib/core/spiffe-id.js'
import type { TrustDomain } from '../../lib/core/trust-domain.js'
import type { KeyJournalStore } from '../ca/key-journal.js'
import type { PendingRequest, PendingSighting, TaskPendingInput } from '../consent/pending-request.js'
import type { TaskStore } from '../tasks/server-task.js'

export type { KeyJournalStore } from '../ca/key-journal.js'

/** Entries per page when a listing does not ask for a size. */
export const DEFAULT_PAGE_SIZE = 500
/** Largest page a listing returns; bigger requests are clamped to it. */
export const MAX_PAGE_SIZE = 1000

/** Which page of a listing to return. */
export interface PageRequest {
  /** 1 to {@link MAX_PAGE_SIZE}; 0 or absent means {@link DEFAULT_PAGE_SIZE}. */
  readonly pageSize?: number
  /** The `nextPageToken` of the previous page; absent or `''` for the first page. */
  readonly pageToken?: string
}

/** A set of values and how an entry's own set must compare with it ({@link SelectorMatchMode}). */
export interface SetMatch<T> {
  readonly set: ReadonlyArray<T>
  readonly mode: SelectorMatchMode
}

/** Filters of {@link EntryStore.list} and {@link EntryStore.count}; all given ones must hold. */
export interface EntryFilter {
  readonly spiffeId?: SpiffeId
  readonly parentId?: SpiffeId
  /** An empty set matches nothing (as `matchSelectors`). */
  readonly selectors?: SetMatch<Selector>
  /** An empty set matches nothing; entries that federate with no trust domain match no set. */
  readonly federatesWith?: SetMatch<TrustDomain>
  readonly hint?: string
}

/** One page of entries, ordered by id. */
export interface EntryPage {
  readonly entries: ReadonlyArray<RegistrationEntry>
  /** Pass back to get the next page; undefined on the last page. */
  readonly nextPageToken: string | undefined
}

/** The outcome of one item of {@link EntryStore.createBatch}. */
export type EntryBatchResult =
  | { readonly ok: true; readonly entry: RegistrationEntry }
  | { readonly ok: false; readonly error: IdentityError }

/** Options of {@link EntryStore.update}. */
export interface EntryUpdateOptions {
  /** The update fails with ERR_ENTRY_REVISION_CONFLICT unless the stored revision is this one. */
  readonly expectedRevision?: number
  readonly hooks?: CommitHooks<RegistrationEntry>
}

/**
 * What a write runs at its commit point, so that a change is audited before it commits and never
 * reported as failed once committed (DESIGN §7).
 */
export interface CommitHooks<T> {
  /**
   * Runs inside the write's transaction, after its rows are written and before COMMIT, with what the
   * write will return. Throwing rolls the write back, and the write fails with that error.
   */
  beforeCommit(result: T): void
  /** COMMIT itself failed after {@link CommitHooks.beforeCommit} ran: the write was rolled back. */
  commitFailed(): void
}

/**
 * Registration entries (DESIGN §3). Fields are validated and normalized with `normalizeEntryFields`
 * on every write. Two entries with the same SPIFFE ID, parent ID and selector set cannot coexist.
 * Every method may also fail with ERR_DATASTORE_IO.
 */
export interface EntryStore {
  /**
   * Stores a new entry (revision 0, a fresh UUID v4 id).
   * @throws ERR_ENTRY_INVALID, ERR_ENTRY_EXISTS, or what `hooks.beforeCommit` threw
   */
  create(fields: EntryFields, hooks?: CommitHooks<RegistrationEntry>): Promise<RegistrationEntry>
  /**
   * Stores several entries in one transaction; an invalid or duplicate item fails alone (its code in
   * its result), the others are stored. Results are in the order of `items`.
   */
  createBatch(
    items: ReadonlyArray<EntryFields>,
    hooks?: CommitHooks<ReadonlyArray<EntryBatchResult>>,
  ): Promise<ReadonlyArray<EntryBatchResult>>
  /** The entry with this id, or undefined. */
  fetch(id: string): Promise<RegistrationEntry | undefined>
  /**
   * One page of the entries that pass `filter`, ordered by id.
   * @throws ERR_PAGE_TOKEN_INVALID, ERR_REQUEST_INVALID (page size)
   */
  list(filter?: EntryFilter, page?: PageRequest): Promise<EntryPage>
  /** Every entry whose parent is one of `parentIds` (expired ones included), ordered by id. */
  listByParents(parentIds: ReadonlyArray<SpiffeId>): Promise<ReadonlyArray<RegistrationEntry>>
  /**
   * Replaces an entry's fields; its revision goes up by one.
   * @throws ERR_ENTRY_NOT_FOUND, ERR_ENTRY_REVISION_CONFLICT, ERR_ENTRY_INVALID, ERR_ENTRY_EXISTS
   */
  update(id: string, fields: EntryFields, options?: EntryUpdateOptions): Promise<RegistrationEntry>
  /**
   * Deletes an entry and returns it as it was.
   * @throws ERR_ENTRY_NOT_FOUND
   */
  delete(id: string, hooks?: CommitHooks<RegistrationEntry>): Promise<RegistrationEntry>
  /** Deletes the entries expired at `nowMs` (`expiresAtMs <= nowMs`); returns how many. */
  prune(nowMs: number): Promise<number>
  /** How many entries pass `filter`. */
  count(filter?: EntryFilter): Promise<number>
}

/** A join token an admin generated (DESIGN §3), good for one agent attestation. */
export interface JoinToken {
  readonly token: string
  readonly expiresAtMs: number
  /** An alias SPIFFE ID for the agent that uses it (SPIRE's `token generate -spiffeID`). */
  readonly aliasId?: SpiffeId | undefined
}

/**
 * Join tokens. Only a SHA-256 digest of each token is stored, so the database never holds a usable token.
 * Every method may also fail with ERR_DATASTORE_IO.
 */
export interface JoinTokenStore {
  /**
   * Stores a new token.
   * @throws ERR_JOIN_TOKEN_INVALID when the token is empty or already stored, or what
   *   `hooks.beforeCommit` threw
   */
  create(token: JoinToken, hooks?: CommitHooks<void>): Promise<void>
  /**
   * Atomically removes the token and returns it if it was stored and unexpired at `nowMs`; undefined
   * otherwise, and for every later call with the same token.
   */
  consume(token: string, nowMs: number): Promise<JoinToken | undefined>
  /** Deletes the tokens expired at `nowMs`; returns how many. */
  prune(nowMs: number): Promise<number>
}

/** An attested agent: its ID, how it attested, its current SVID, and whether it is banned. */
export interface AttestedAgent {
  readonly spiffeId: SpiffeId
  /** The attestor that admitted it, `join_token`. */
  readonly attestationType: string
  /** Serial number of its current agent SVID, lowercase hex ('' once banned, as SPIRE does). */
  readonly serialHex: string
  /** When its current SVID expires. */
  readonly expiresAtMs: number
  readonly banned: boolean
  readonly createdAtMs: number
  readonly updatedAtMs: number
  readonly selectors: ReadonlyArray<Selector>
}

/** The fields given when an agent is first stored; the times are stamped by the store. */
export type AgentFields = Omit<AttestedAgent, 'createdAtMs' | 'updatedAtMs'>

/** The fields {@link AgentStore.update} can change (renewal, ban, unban); absent ones are kept. */
export type AgentChanges = Partial<Omit<AgentFields, 'spiffeId'>>

/** Filter of {@link AgentStore.list}. */
export interface AgentFilter {
  readonly banned?: boolean
}

/** One page of agents, ordered by SPIFFE ID. */
export interface AgentPage {
  readonly agents: ReadonlyArray<AttestedAgent>
  readonly nextPageToken: string | undefined
}

/** Attested agents. Every method may also fail with ERR_DATASTORE_IO. */
export interface AgentStore {
  /**
   * Stores a newly attested agent.
   * @throws ERR_AGENT_EXISTS when an agent with this ID is already stored
   */
  create(fields: AgentFields, hooks?: CommitHooks<AttestedAgent>): Promise<AttestedAgent>
  /** The agent with this ID, or undefined. */
  fetch(spiffeId: SpiffeId): Promise<AttestedAgent | undefined>
  /**
   * One page of agents, ordered by SPIFFE ID.
   * @throws ERR_PAGE_TOKEN_INVALID, ERR_REQUEST_INVALID (page size)
   */
  list(filter?: AgentFilter, page?: PageRequest): Promise<AgentPage>
  /**
   * Changes an agent (a renewal sets `serialHex` and `expiresAtMs`; a ban sets `banned`), stamps `updatedAtMs`.
   * @throws ERR_AGENT_NOT_FOUND
   */
  update(
    spiffeId: SpiffeId,
    changes: AgentChanges,
    hooks?: CommitHooks<AttestedAgent>,
  ): Promise<AttestedAgent>
  /**
   * Evicts an agent and returns it as it was.
   * @throws ERR_AGENT_NOT_FOUND
   */
  delete(spiffeId: SpiffeId, hooks?: CommitHooks<AttestedAgent>): Promise<AttestedAgent>
  /** How many agents pass `filter`. */
  count(filter?: AgentFilter): Promise<number>
}

/** A trust domain's bundle as stored: the SPIFFE bundle JSON document and its sequence number. */
export interface StoredBundle {
  readonly trustDomain: TrustDomain
  /** The SPIFFE bundle (JWK Set) document, as given. */
  readonly document: string
  /** `spiffe_sequence`, 0 to 2^64 − 1. */
  readonly sequence: bigint
  readonly updatedAtMs: number
}

/** The server's own bundle and the federated ones, one per trust domain. May fail with ERR_DATASTORE_IO. */
export interface BundleStore {
  /**
   * Creates or replaces the bundle of `trustDomain`.
   * @throws ERR_BUNDLE_MALFORMED when the sequence is out of range
   */
  set(
    trustDomain: TrustDomain,
    document: string,
    sequence: bigint,
    hooks?: CommitHooks<void>,
  ): Promise<StoredBundle>
  /** The bundle of `trustDomain`, or undefined. */
  fetch(trustDomain: TrustDomain): Promise<StoredBundle | undefined>
  /** Every stored bundle, ordered by trust domain name. */
  list(): Promise<ReadonlyArray<StoredBundle>>
  /**
   * Deletes the bundle of `trustDomain`.
   * @throws ERR_BUNDLE_NOT_FOUND
   */
  delete(trustDomain: TrustDomain, hooks?: CommitHooks<void>): Promise<void>
}

/** Options of {@link PendingRequestStore.report}. */
export interface PendingReportOptions {
  readonly nowMs: number
  /** A pending request last seen this long ago is stale: a new sighting starts a new request. */
  readonly pendingTtlMs: number
  /** Most rows kept; a new request past it drops the least recently seen rows. */
  readonly maxRequests: number
}

/** What {@link PendingRequestStore.report} did. */
export interface PendingReportResult {
  readonly request: PendingRequest
  /** True when the sighting started a new request (not counted toward a live one). */
  readonly isNew: boolean
  /** Rows dropped to stay within `maxRequests`. */
  readonly dropped: number
}

/** A decision on a pending request. */
export interface PendingDecision {
  readonly state: 'approved' | 'denied'
  readonly nowMs: number
  readonly deniedUntilMs?: number
  /** Only requests seen after this time may be decided (older ones are stale). */
  readonly seenAfterMs: number
}

/** Options of {@link PendingRequestStore.requestTask}. */
export interface TaskRequestOptions {
  readonly nowMs: number
  /** Until when the caller waits for the decision. */
  readonly waitUntilMs: number
  /** Most rows kept; a new request past it drops the least recently seen rows. */
  readonly maxRequests: number
}

/** What {@link PendingRequestStore.requestTask} did. */
export interface TaskRequestResult {
  /** The new request, or the denied one (of the same task key, within its deny time) it counted toward. */
  readonly request: PendingRequest
  readonly isDenied: boolean
  readonly dropped: number
}

/** Pending requests (DESIGN §10), bounded in number. */
export interface PendingRequestStore {
  /**
   * Counts a sighting toward the live request of its (agent, uid, sha256, path): a pending one not
   * stale, a denied one within its deny time, an approved one whose entry still exists unexpired;
   * else stores it as a new pending request, first dropping the least recently seen rows past
   * `maxRequests`. One transaction.
   * @throws ERR_DATASTORE_IO
   */
  report(sighting: PendingSighting, options: PendingReportOptions): Promise<PendingReportResult>
  /**
   * A task that needs a human (DESIGN §11): counts toward a denied request of the same task key
   * within its deny time (`isDenied`), else stores a new pending request of kind `task`, first
   * dropping the least recently seen rows past `maxRequests`. One transaction.
   * @throws ERR_DATASTORE_IO
   */
  requestTask(input: TaskPendingInput, options: TaskRequestOptions): Promise<TaskRequestResult>
  /** The caller of a pending task request stopped waiting at `nowMs`: the request expires. */
  endWait(id: string, nowMs: number): Promise<void>
  fetch(id: string): Promise<PendingRequest | undefined>
  /** Every row kept, the most recently seen first. */
  list(): Promise<ReadonlyArray<PendingRequest>>
  /** Decides a request still pending and seen after `seenAfterMs`; else changes nothing, returns undefined. */
  decide(id: string, decision: PendingDecision): Promise<PendingRequest | undefined>
  /** Records the entry an approval created. */
  setEntry(id: string, entryId: string): Promise<void>
  /** Takes an approval back (its entry could not be created): the request is pending again. */
  reopen(id: string): Promise<void>
  /**
   * Withdraws the consent of an approved request: it becomes denied until `deniedUntilMs` (its
   * `entryId` kept, to show what it had). Undefined, and nothing changed, when it is not approved.
   */
  withdraw(id: string, w: { nowMs: number; deniedUntilMs: number }): Promise<PendingRequest | undefined>
}

/** A signed audit checkpoint the server holds: the latest of one writer (DESIGN §10). */
export interface StoredCheckpoint {
  /** The writer's SPIFFE ID (the note's origin). */
  readonly origin: string
  readonly size: number
  /** RFC 6962 root hash, base64. */
  readonly rootHash: string
  /** The signed note as received. */
  readonly note: string
  /** Who reported it: the agent's SPIFFE ID, or the server's own. */
  readonly reporter: string
  readonly receivedAtMs: number
}

/** What {@link CheckpointStore.record} did with a checkpoint. */
export type CheckpointRecordResult =
  | { readonly outcome: 'stored' | 'unchanged' }
  /** Smaller than the one held, or of the same size with another root: not stored. */
  | { readonly outcome: 'conflict'; readonly held: StoredCheckpoint }

/** The latest audit checkpoint per origin. Every method may fail with ERR_DATASTORE_IO. */
export interface CheckpointStore {
  /**
   * Keeps `checkpoint` as its origin's latest when it is larger than the one held (or the first); the
   * same size and root again changes nothing; a smaller one, or another root at the same size, is a
   * conflict and changes nothing. One transaction.
   */
  record(checkpoint: StoredCheckpoint): Promise<CheckpointRecordResult>
  fetch(origin: string): Promise<StoredCheckpoint | undefined>
  /** Every origin's latest, ordered by origin. */
  list(): Promise<ReadonlyArray<StoredCheckpoint>>
}

/** A revocation as the server keeps it: who revoked it too (an audit caller's short form). */
export interface StoredRevocation extends Revocation {
  readonly revokedBy: string
}

/**
 * Revocations (DESIGN §11), one per (kind, value). Every method may also fail with ERR_DATASTORE_IO.
 */
export interface RevocationStore {
  /**
   * Stores a revocation, or merges it into the one with the same kind and value (the later
   * `issuedBeforeMs` and `keepUntilMs` win); returns what is stored now. At most `limit` live
   * revocations (unpruned at `revocation.revokedAtMs`) are kept.
   * @throws ERR_REVOCATION_LIMIT, or what `hooks.beforeCommit` threw
   */
  create(
    revocation: StoredRevocation,
    options: { readonly limit: number; readonly hooks?: CommitHooks<StoredRevocation> },
  ): Promise<StoredRevocation>
  /** Every revocation still kept at `nowMs` (`keepUntilMs > nowMs`), ordered by kind and value. */
  list(nowMs: number): Promise<ReadonlyArray<StoredRevocation>>
  /** Deletes the revocations whose `keepUntilMs <= nowMs`; returns how many. */
  prune(nowMs: number): Promise<number>
}

/** Every store of one datastore, and how to close it. */
export interface Datastore {
  readonly entries: EntryStore
  readonly joinTokens: JoinTokenStore
  readonly agents: AgentStore
  readonly bundles: BundleStore
  readonly keyJournal: KeyJournalStore
  readonly pendingRequests: PendingRequestStore
  readonly checkpoints: CheckpointStore
  readonly revocations: RevocationStore
  /** The server's tasks (DESIGN §11). */
  readonly tasks: TaskStore
  /** Closes the database; the stores must not be used afterwards. */
  close(): Promise<void>
}
