import type { ProcessFacts } from '../../../common/peercred/process-facts.js'
import type { Clock } from '../../../lib/core/clock.js'
import { IdentityError } from '../../../lib/core/errors.js'
import type { Selector } from '../../../lib/core/selector.js'
import type { WorkloadAttestor } from '../attestor.js'
import { ExeHasher, type ExeImage } from './exe-hasher.js'
import { buildUnixSelectors, unifiedCgroupPaths } from './unix-selectors.js'
import { UserDb, type WarnLog } from './user-db.js'

/** Configuration of the unix workload attestor (from the agent's config loader). */
export interface UnixAttestorOptions {
  /** The `/proc` root (SPIRE's `HOST_PROC`); default `/proc`. Must match `readProcessFacts`'. */
  readonly procRoot?: string
  /** Directory holding `passwd` and `group`; default `/etc`. */
  readonly etcRoot?: string
  /** Largest image hashed; default 512 MiB; 0 = no limit; negative = no sha256 selector at all. */
  readonly hashSizeLimitBytes?: number
  /** Worker threads that hash, 1–4; default 2. */
  readonly hashWorkers?: number
  /** Hashes remembered by (dev, inode, size, mtime, ctime); default 4096. */
  readonly hashCacheEntries?: number
  /** Distinct images hashing or queued at once before attestations fail; default 64. */
  readonly maxPendingHashes?: number
  /** How often `passwd`/`group` are checked for changes; default 1000 ms. */
  readonly namesRecheckIntervalMs?: number
}

/** Dependencies of {@link UnixAttestor}. */
export interface UnixAttestorDeps {
  readonly clock?: Clock
  /** Receives a warning when `passwd` or `group` cannot be read. */
  readonly log?: WarnLog
}

/** The selectors of one caller plus what the audit log wants to know about its executable. */
export interface UnixAttestation {
  readonly selectors: ReadonlyArray<Selector>
  /** Path, whether it was deleted/replaced on disk, size, sha256 and why it may be missing. */
  readonly exe: ExeImage
}

const DEFAULTS = {
  procRoot: '/proc',
  etcRoot: '/etc',
  hashSizeLimitBytes: 512 * 1024 * 1024,
  hashWorkers: 2,
  hashCacheEntries: 4096,
  maxPendingHashes: 64,
  namesRecheckIntervalMs: 1000,
} as const satisfies Required<UnixAttestorOptions>

function checkOptions(o: Required<UnixAttestorOptions>): void {
  const problems: string[] = []
  if (!Number.isSafeInteger(o.hashSizeLimitBytes)) problems.push('hashSizeLimitBytes must be an integer')
  if (!Number.isInteger(o.hashWorkers) || o.hashWorkers < 1 || o.hashWorkers > 4) {
    problems.push('hashWorkers must be 1–4')
  }
  for (const name of ['hashCacheEntries', 'maxPendingHashes'] as const) {
    if (!Number.isInteger(o[name]) || o[name] < 1) problems.push(`${name} must be a positive integer`)
  }
  if (!Number.isFinite(o.namesRecheckIntervalMs) || o.namesRecheckIntervalMs < 0) {
    problems.push('namesRecheckIntervalMs must be ≥ 0')
  }
  if (problems.length > 0) throw new IdentityError('ERR_CONFIG_INVALID', problems.join('; '))
}

/**
 * The unix workload attestor (spec §8, DESIGN §6): uid, user, gid, group, supplementary gids and
 * groups, path and sha256 of the running image, and cgroup v2 path. Call {@link UnixAttestor.close}
 * at shutdown to stop the hashing workers.
 */
export class UnixAttestor implements WorkloadAttestor {
  readonly #hasher: ExeHasher
  readonly #users: UserDb

  /** @throws ERR_CONFIG_INVALID listing every bad option. */
  constructor(options: UnixAttestorOptions = {}, deps: UnixAttestorDeps = {}) {
    const o: Required<UnixAttestorOptions> = { ...DEFAULTS, ...stripUndefined(options) }
    checkOptions(o)
    this.#hasher = new ExeHasher({
      procRoot: o.procRoot,
      hashSizeLimitBytes: o.hashSizeLimitBytes,
      cacheEntries: o.hashCacheEntries,
      workers: o.hashWorkers,
      maxPendingHashes: o.maxPendingHashes,
    })
    this.#users = new UserDb({ etcRoot: o.etcRoot, recheckIntervalMs: o.namesRecheckIntervalMs }, deps)
  }

  /**
   * The caller's unix selectors.
   * @throws ERR_ATTESTATION_FAILED when the caller exited, executed another binary, or its
   * executable cannot be read; also under hashing overload.
   */
  async attest(facts: ProcessFacts): Promise<ReadonlyArray<Selector>> {
    return (await this.attestDetailed(facts)).selectors
  }

  /**
   * Like {@link UnixAttestor.attest}, plus the facts about the executable for the audit log.
   * @throws ERR_ATTESTATION_FAILED as {@link UnixAttestor.attest}
   */
  async attestDetailed(facts: ProcessFacts): Promise<UnixAttestation> {
    const [exe, names] = await Promise.all([this.#hasher.inspect(facts), this.#users.lookup()])
    const selectors = buildUnixSelectors({
      uid: facts.uid,
      gid: facts.gid,
      groups: facts.groups,
      userName: names.userName,
      groupName: names.groupName,
      exePath: exe.path,
      sha256: exe.sha256,
      cgroupPaths: unifiedCgroupPaths(facts.cgroups),
    })
    return { selectors, exe }
  }

  /** Stops the hashing workers; attestations still running fail. */
  close(): Promise<void> {
    return this.#hasher.close()
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}
