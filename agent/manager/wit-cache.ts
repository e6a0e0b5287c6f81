import { createPublicKey } from 'node:crypto'
import type { Clock } from '../../lib/core/clock.js'
import type { RegistrationEntry } from '../../lib/core/registration-entry.js'
import { exportWitKeyJwk } from '../../lib/core/wit/workload-key.js'
import type { KeyFactory, SigningServer } from './ports.js'

/** After a failed mint, an entry's WIT is not asked for again before this (the stream reports the failure). */
const RETRY_AFTER_FAILURE_MS = 1000

/** A WIT-SVID with the private JWK of the key it binds (handed to the workload, never to the server or a log). */
export interface CachedWit {
  readonly entry: RegistrationEntry
  readonly token: string
  /** The private JWK, JSON: what `wit_svid_key` carries. */
  readonly keyJwk: string
  readonly issuedAtMs: number
  readonly expiresAtMs: number
}

/** The WITs of some entries: those ready, how many are still being minted, and the last failure. */
export interface WitView {
  readonly wits: ReadonlyArray<CachedWit>
  readonly pending: number
  readonly error?: unknown
}

/**
 * WIT-SVIDs per entry, minted on first demand (a fresh key pair each time, made here on the agent's
 * host: only the public key goes to the server) and minted again from half their lifetime on, like
 * X509-SVIDs. The previous WIT is served until its successor arrives; `onChange` announces each new one.
 */
export class WitCache {
  readonly #deps: { clock: Clock; server: SigningServer; generateKey: KeyFactory; onChange: () => void }
  readonly #wits = new Map<string, CachedWit>()
  readonly #inFlight = new Map<string, Promise<void>>()
  readonly #errors = new Map<string, { readonly err: unknown; readonly atMs: number }>()

  constructor(deps: { clock: Clock; server: SigningServer; generateKey: KeyFactory; onChange: () => void }) {
    this.#deps = deps
  }

  /** The WITs of `entries` that are usable now; starts minting those missing or due. */
  view(entries: ReadonlyArray<RegistrationEntry>): WitView {
    const nowMs = this.#deps.clock.nowMs()
    const wits: CachedWit[] = []
    let pending = 0
    let error: unknown
    for (const entry of entries) {
      const wit = this.#wits.get(entry.id)
      const usable = wit !== undefined && wit.entry.revision === entry.revision && wit.expiresAtMs > nowMs
      if (usable) wits.push(wit)
      const failure = this.#errors.get(entry.id)
      const mayTry = failure === undefined || nowMs - failure.atMs >= RETRY_AFTER_FAILURE_MS
      if ((!usable || isDue(wit, nowMs)) && mayTry) this.#mint(entry)
      if (usable) continue
      if (this.#inFlight.has(entry.id)) pending++
      else if (failure !== undefined) error = failure.err
    }
    return { wits, pending, ...(error !== undefined && { error }) }
  }

  /** Mints again every cached WIT that is past half its lifetime (call periodically). */
  refreshDue(): void {
    const nowMs = this.#deps.clock.nowMs()
    for (const wit of this.#wits.values()) if (isDue(wit, nowMs)) this.#mint(wit.entry)
  }

  /** Forgets the WITs of entries that are no longer authorized. */
  retain(entryIds: ReadonlySet<string>): void {
    for (const id of this.#wits.keys()) if (!entryIds.has(id)) this.#wits.delete(id)
  }

  #mint(entry: RegistrationEntry): void {
    if (this.#inFlight.has(entry.id)) return
    const run = (async () => {
      const privateKey = await this.#deps.generateKey()
      const keyJwk = exportWitKeyJwk(privateKey)
      const publicDer = createPublicKey(privateKey).export({ type: 'spki', format: 'der' })
      const minted = await this.#deps.server.newWitSvid(entry.id, publicDer)
      this.#wits.set(entry.id, { entry, keyJwk, ...minted })
      this.#errors.delete(entry.id)
    })()
      .catch((err: unknown) => {
        this.#errors.set(entry.id, { err, atMs: this.#deps.clock.nowMs() })
      })
      .finally(() => {
        this.#inFlight.delete(entry.id)
        this.#deps.onChange()
      })
    this.#inFlight.set(entry.id, run)
  }
}

function isDue(wit: CachedWit | undefined, nowMs: number): boolean {
  return wit !== undefined && nowMs >= wit.issuedAtMs + (wit.expiresAtMs - wit.issuedAtMs) / 2
}
