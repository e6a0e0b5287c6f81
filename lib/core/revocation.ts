import { IdentityError } from './errors.js'
import type { SpiffeId } from './spiffe-id.js'

/**
 * What a revocation names: one X509-SVID by serial (lowercase hex, as `Certificate.serialHex`), one
 * JWT-SVID by `jti`, one task by its id, or everything issued to a SPIFFE ID before a time.
 */
export type RevocationKind = 'x509-serial' | 'jwt-id' | 'task' | 'spiffe-id'

/** The kinds, for parsers. */
export const REVOCATION_KINDS: ReadonlyArray<RevocationKind> = ['x509-serial', 'jwt-id', 'task', 'spiffe-id']

/**
 * How far Tessera's CA backdates an X509-SVID's notBefore (so peers with a slightly slow clock
 * accept a new one). A certificate whose notBefore plus this is before a `spiffe-id` revocation's
 * cutoff was issued before it.
 */
export const X509_NOT_BEFORE_BACKDATE_MS = 10_000

/** One revoked credential (or set of credentials), as the server keeps it and agents serve it. */
export interface Revocation {
  readonly kind: RevocationKind
  /** The serial (hex), `jti`, task id or SPIFFE ID. */
  readonly value: string
  /**
   * For `spiffe-id`: credentials issued strictly before this time (ms, a whole second) are revoked;
   * the server issues nothing for that ID before it. 0 for the other kinds.
   */
  readonly issuedBeforeMs: number
  readonly revokedAtMs: number
  /** After this, nothing revoked can still be valid: the revocation is pruned. */
  readonly keepUntilMs: number
  readonly reason: string
}

/** A credential a verifier accepted, as far as revocation is concerned. */
export type RevocableCredential =
  | {
      readonly kind: 'x509'
      readonly id: SpiffeId
      readonly serialHex: string
      readonly notBeforeMs: number
    }
  | {
      readonly kind: 'jwt'
      readonly id: SpiffeId
      /** The `jti` claim, when the token has one. */
      readonly jwtId?: string | undefined
      /** The `iat` claim in ms, when the token has one (a token without is treated as issued at 0). */
      readonly issuedAtMs?: number | undefined
    }
  | { readonly kind: 'task'; readonly taskId: string }

/** Gives the current revocations; `RevocationSource` in `@tessera/spiffe/workload` watches an agent's. */
export interface RevocationListSource {
  getRevocations(): RevocationList
  /** Subscribes to list changes, when the source can tell (a watch can); returns the unsubscribe function. */
  onUpdate?(listener: () => void): () => void
}

/** The key of a revocation in a list: kind and value. */
function keyOf(kind: RevocationKind, value: string): string {
  return `${kind}\n${value}`
}

/**
 * An immutable, indexed set of revocations. Looking a credential up costs one or two map reads.
 * Revocations past their `keepUntilMs` still count here: whoever builds the list drops them.
 */
export class RevocationList {
  readonly #byKey: ReadonlyMap<string, Revocation>
  readonly #all: ReadonlyArray<Revocation>

  private constructor(all: ReadonlyArray<Revocation>) {
    const byKey = new Map<string, Revocation>()
    for (const r of all) {
      const key = keyOf(r.kind, r.value)
      const seen = byKey.get(key)
      // Two cutoffs for one SPIFFE ID: the later one covers the earlier.
      if (seen === undefined || r.issuedBeforeMs > seen.issuedBeforeMs) byKey.set(key, r)
    }
    this.#byKey = byKey
    this.#all = Object.freeze([...byKey.values()])
  }

  /** The empty list. */
  static readonly EMPTY = new RevocationList([])

  /** A list of `revocations` (copied). */
  static of(revocations: Iterable<Revocation>): RevocationList {
    return new RevocationList([...revocations].map((r) => Object.freeze({ ...r })))
  }

  /** Every revocation, one per kind and value. */
  get revocations(): ReadonlyArray<Revocation> {
    return this.#all
  }

  get size(): number {
    return this.#all.length
  }

  /** The list without revocations whose `keepUntilMs` has passed at `nowMs`. */
  prune(nowMs: number): RevocationList {
    const kept = this.#all.filter((r) => r.keepUntilMs > nowMs)
    return kept.length === this.#all.length ? this : new RevocationList(kept)
  }

  /** The cutoff of the revocation of `id`'s credentials (ms), or 0 when there is none. */
  issuedBeforeFor(id: SpiffeId): number {
    return this.#byKey.get(keyOf('spiffe-id', id.toString()))?.issuedBeforeMs ?? 0
  }

  /** The revocation that covers `credential`, if any. */
  find(credential: RevocableCredential): Revocation | undefined {
    if (credential.kind === 'task') return this.#byKey.get(keyOf('task', credential.taskId))
    const direct =
      credential.kind === 'x509'
        ? this.#byKey.get(keyOf('x509-serial', normalizeSerialHex(credential.serialHex)))
        : credential.jwtId === undefined
          ? undefined
          : this.#byKey.get(keyOf('jwt-id', credential.jwtId))
    if (direct !== undefined) return direct
    const byId = this.#byKey.get(keyOf('spiffe-id', credential.id.toString()))
    if (byId === undefined) return undefined
    const issuedAtMs =
      credential.kind === 'x509'
        ? credential.notBeforeMs + X509_NOT_BEFORE_BACKDATE_MS
        : (credential.issuedAtMs ?? 0)
    return issuedAtMs < byId.issuedBeforeMs ? byId : undefined
  }

  /**
   * Throws when `credential` is revoked.
   * @throws ERR_CREDENTIAL_REVOKED
   */
  check(credential: RevocableCredential): void {
    const found = this.find(credential)
    if (found === undefined) return
    throw new IdentityError('ERR_CREDENTIAL_REVOKED', `the credential was revoked (${describe(found)})`)
  }
}

/** A short public description: the kind and value, never the reason (free text written by an admin). */
function describe(r: Revocation): string {
  return `${r.kind} ${r.value}`
}

/** A serial as `Certificate.serialHex` writes it: lowercase hex without leading zeros (`:` separators dropped). */
export function normalizeSerialHex(serial: string): string {
  return serial
    .replace(/:/g, '')
    .toLowerCase()
    .replace(/^0+(?=.)/, '')
}

/**
 * Throws when `credential` is revoked by the current list of `source`; does nothing without a source.
 * @throws ERR_CREDENTIAL_REVOKED
 */
export function checkNotRevoked(
  source: RevocationListSource | undefined,
  credential: RevocableCredential,
): void {
  source?.getRevocations().check(credential)
}
