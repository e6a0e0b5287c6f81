import type { Clock } from '../../lib/core/clock.js'
import { isEntryExpired, type RegistrationEntry } from '../../lib/core/registration-entry.js'
import type { RevocableCredential, RevocationList } from '../../lib/core/revocation.js'
import { type Selector, selectorsAdmit } from '../../lib/core/selector.js'
import type { SpiffeId } from '../../lib/core/spiffe-id.js'
import { parseCertificate } from '../../lib/core/x509/certificate.js'
import { createCsr } from '../../lib/core/x509/csr.js'
import { exportPkcs8Der } from '../../lib/core/x509/private-key.js'
import type { KeyFactory, SigningServer, SignResult } from './ports.js'

/** An X509-SVID the agent holds for one registration entry, ready to hand to a workload. */
export interface CachedX509Svid {
  readonly entry: RegistrationEntry
  readonly id: SpiffeId
  /** Concatenated DER certificates, leaf first. */
  readonly chainDer: Buffer
  /** Unencrypted PKCS#8 DER private key (only ever sent to the workload the entry admits). */
  readonly keyPkcs8: Buffer
  readonly issuedAtMs: number
  readonly expiresAtMs: number
  /** When the manager replaces it: just before half of its lifetime (SPIRE: half-life, −10 % jitter). */
  readonly rotateAtMs: number
  /** The leaf's serial (as `Certificate.serialHex`) and notBefore, by which a revocation names it. */
  readonly serialHex: string
  readonly notBeforeMs: number
}

/** What a workload with some selectors may get right now. */
export interface X509View {
  /** The SVIDs, oldest entry first (so the first, the default, is stable). */
  readonly svids: ReadonlyArray<CachedX509Svid>
  /** Entries that admit the workload but whose SVID is not signed yet. */
  readonly pending: number
}

/** What the cache needs. */
export interface SvidCacheDeps {
  readonly clock: Clock
  readonly server: SigningServer
  readonly generateKey: KeyFactory
  /** Called after every change of what is cached. */
  readonly onChange: () => void
  readonly onError?: (err: unknown, entryId?: string) => void
  /** Largest number of CSRs in one signing call. */
  readonly batchSize?: number
  /** Random source for rotation jitter; injectable for tests. */
  readonly random?: () => number
}

/** Node alias entries (`spiffe_id:` selectors) name agents, never workloads: no SVIDs are made for them. */
function isWorkloadEntry(entry: RegistrationEntry): boolean {
  return !entry.selectors.some((s) => s.type === 'spiffe_id')
}

/** A cached SVID as a revocation list looks it up. */
function credentialOf(svid: CachedX509Svid): RevocableCredential {
  return { kind: 'x509', id: svid.id, serialHex: svid.serialHex, notBeforeMs: svid.notBeforeMs }
}

function byAge(a: RegistrationEntry, b: RegistrationEntry): number {
  return a.createdAtMs - b.createdAtMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
}

/**
 * The agent's X509-SVIDs, one per authorized workload entry: signed eagerly when an entry arrives, re-signed
 * when it changes, rotated before half-life, dropped when the entry goes. Serves cached SVIDs while the
 * server is unreachable, until they expire.
 */
export class SvidCache {
  readonly #deps: SvidCacheDeps
  #entries: ReadonlyArray<RegistrationEntry> = []
  readonly #svids = new Map<string, CachedX509Svid>()
  #reconciling: Promise<void> | undefined
  #again = false
  /** After a failed signing call, periodic retries wait until then (1 s doubling to 30 s). */
  #retryAtMs = 0
  #failures = 0
  /** The last revocations seen: an SVID signed while one was being made is replaced at once too. */
  #revoked: RevocationList | undefined

  constructor(deps: SvidCacheDeps) {
    this.#deps = deps
  }

  /** Replaces the set of authorized entries (a sync snapshot) and signs what is missing. */
  setEntries(entries: ReadonlyArray<RegistrationEntry>): Promise<void> {
    this.#entries = [...entries].sort(byAge)
    const live = new Map(this.#entries.map((e) => [e.id, e]))
    let changed = false
    for (const [id, svid] of this.#svids) {
      const entry = live.get(id)
      if (!entry || entry.revision !== svid.entry.revision) {
        this.#svids.delete(id)
        changed = true
      }
    }
    if (changed) this.#deps.onChange()
    // A new snapshot proves the server is reachable: sign at once, whatever the retry backoff says.
    this.#retryAtMs = 0
    return this.reconcile()
  }

  /**
   * Marks every cached SVID that `revoked` covers for rotation now and signs replacements (a new key,
   * a new serial). Until a replacement arrives the revoked one is still what the entry's workloads
   * hold (verifiers that consult revocations refuse it), so open streams are not cut.
   */
  rotateRevoked(revoked: RevocationList): Promise<void> {
    this.#revoked = revoked
    let count = 0
    for (const [id, svid] of this.#svids) {
      if (revoked.find(credentialOf(svid)) === undefined || svid.rotateAtMs === 0) continue
      this.#svids.set(id, { ...svid, rotateAtMs: 0 })
      count++
    }
    if (count === 0) return Promise.resolve()
    this.#retryAtMs = 0
    return this.reconcile()
  }

  /** Every entry currently authorized. */
  get entries(): ReadonlyArray<RegistrationEntry> {
    return this.#entries
  }

  /** The SVIDs a workload with `selectors` may get now (unexpired entries, unexpired SVIDs). */
  viewFor(selectors: ReadonlyArray<Selector>): X509View {
    const nowMs = this.#deps.clock.nowMs()
    const svids: CachedX509Svid[] = []
    let pending = 0
    for (const entry of this.#entries) {
      if (isEntryExpired(entry, nowMs) || !selectorsAdmit(entry.selectors, selectors)) continue
      const svid = this.#svids.get(entry.id)
      if (svid && svid.expiresAtMs > nowMs) svids.push(svid)
      else pending++
    }
    return { svids, pending }
  }

  /** Signs missing, changed and due-for-rotation SVIDs; concurrent calls coalesce. */
  reconcile(): Promise<void> {
    if (this.#reconciling) {
      this.#again = true
      return this.#reconciling
    }
    this.#reconciling = (async () => {
      do {
        this.#again = false
        await this.#signDue()
      } while (this.#again)
    })().finally(() => {
      this.#reconciling = undefined
    })
    return this.#reconciling
  }

  async #signDue(): Promise<void> {
    const nowMs = this.#deps.clock.nowMs()
    if (nowMs < this.#retryAtMs) return
    const due = this.#entries.filter((e) => {
      if (!isWorkloadEntry(e) || isEntryExpired(e, nowMs)) return false
      const svid = this.#svids.get(e.id)
      return !svid || nowMs >= svid.rotateAtMs
    })
    const size = this.#deps.batchSize ?? 100
    for (let i = 0; i < due.length; i += size) {
      if (this.#deps.clock.nowMs() < this.#retryAtMs) return // a batch failed: back off
      await this.#signBatch(due.slice(i, i + size))
    }
  }

  async #signBatch(entries: ReadonlyArray<RegistrationEntry>): Promise<void> {
    const jobs = await Promise.all(
      entries.map(async (entry) => ({ entry, key: await this.#deps.generateKey() })),
    )
    let results: ReadonlyArray<SignResult>
    try {
      results = await this.#deps.server.batchNewX509Svid(
        jobs.map((j) => ({ entryId: j.entry.id, csrDer: createCsr(j.key) })),
      )
    } catch (err) {
      this.#failures++
      this.#retryAtMs = this.#deps.clock.nowMs() + Math.min(30_000, 1000 * 2 ** (this.#failures - 1))
      this.#deps.onError?.(err)
      return
    }
    this.#failures = 0
    this.#retryAtMs = 0
    const nowMs = this.#deps.clock.nowMs()
    let changed = false
    for (const [i, { entry, key }] of jobs.entries()) {
      const result = results[i]
      if (!result) continue
      if (!result.ok) {
        this.#deps.onError?.(new Error(`${result.code}: ${result.message}`), entry.id)
        continue
      }
      // The entry may have changed or gone while this batch was being signed.
      if (!this.#entries.some((e) => e.id === entry.id && e.revision === entry.revision)) continue
      const cached = this.#cached(entry, result.chainDer, exportPkcs8Der(key), nowMs, result.expiresAtMs)
      const isRevoked = this.#revoked?.find(credentialOf(cached)) !== undefined
      this.#svids.set(entry.id, isRevoked ? { ...cached, rotateAtMs: 0 } : cached)
      if (isRevoked) this.#again = true
      changed = true
    }
    if (changed) this.#deps.onChange()
  }

  #cached(
    entry: RegistrationEntry,
    chain: ReadonlyArray<Buffer>,
    keyPkcs8: Buffer,
    nowMs: number,
    expiresAtMs: number,
  ): CachedX509Svid {
    const lifetime = Math.max(0, expiresAtMs - nowMs)
    const jitter = (this.#deps.random ?? Math.random)() * 0.1
    const leaf = parseCertificate(chain[0] ?? Buffer.alloc(0))
    return {
      serialHex: leaf.serialHex,
      notBeforeMs: leaf.notBeforeMs,
      entry,
      id: entry.spiffeId,
      chainDer: Buffer.concat(chain),
      keyPkcs8,
      issuedAtMs: nowMs,
      expiresAtMs,
      rotateAtMs: nowMs + Math.floor(lifetime * (0.5 - jitter)),
    }
  }
}
