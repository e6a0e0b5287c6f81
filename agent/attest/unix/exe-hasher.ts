import { type BigIntStats, closeSync, fstat, openSync, readlinkSync } from 'node:fs'
import { open, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { ProcessFacts } from '../../../common/peercred/process-facts.js'
import { IdentityError, isIdentityError } from '../../../lib/core/errors.js'
import { HashPool } from './hash-pool.js'
import { LruCache } from './lru-cache.js'
import { splitDeletedSuffix } from './unix-selectors.js'

/**
 * How the sha256 was obtained, or why there is none: `disabled` (negative size limit),
 * `over-limit` (larger than `hashSizeLimitBytes`), `unstable` (the file changed while it was read).
 */
export type HashOutcome = 'cached' | 'hashed' | 'disabled' | 'over-limit' | 'unstable'

/** The running image of a process, as seen through `/proc/<pid>/exe`. */
export interface ExeImage {
  /** The executable's path, without the kernel's ` (deleted)` suffix. */
  readonly path: string
  /** True when the file was unlinked or replaced on disk since the process started it. */
  readonly isDeleted: boolean
  readonly sizeBytes: number
  /** Hex SHA-256 of the running image; `undefined` unless `hashOutcome` is `cached` or `hashed`. */
  readonly sha256: string | undefined
  readonly hashOutcome: HashOutcome
}

/** Options for {@link ExeHasher}; the unix attestor validates them. */
export interface ExeHasherOptions {
  readonly procRoot: string
  /** 0 = no limit, negative = hashing disabled. */
  readonly hashSizeLimitBytes: number
  readonly cacheEntries: number
  readonly workers: number
  /** Distinct images being hashed or waiting at once; more fail the attestation (load shedding). */
  readonly maxPendingHashes: number
}

function failed(message: string, cause?: unknown): IdentityError {
  return new IdentityError('ERR_ATTESTATION_FAILED', message, cause === undefined ? undefined : { cause })
}

/** (dev, inode, size, mtime, ctime) in nanoseconds: what identifies one version of one file. */
function cacheKeyOf(s: BigIntStats): string {
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`
}

/**
 * Reads a process's running image race-free and hashes it off the event loop (DESIGN §6).
 * Hashes are cached by {@link cacheKeyOf} in a bounded LRU; callers with the same key share
 * one hashing job.
 */
export class ExeHasher {
  readonly #options: ExeHasherOptions
  readonly #cache: LruCache<string, string>
  readonly #jobs = new Map<string, Promise<string | undefined>>()
  readonly #pool: HashPool

  constructor(options: ExeHasherOptions) {
    this.#options = options
    this.#cache = new LruCache(options.cacheEntries)
    this.#pool = new HashPool(options.workers)
  }

  /**
   * Opens `/proc/<pid>/exe`, then checks the process is still alive (a live pid cannot have been
   * reused, so the open file is its image), checks the process has not executed another binary
   * since its facts were read (same path, and the same (dev, inode) as at accept), and hashes the open file (or finds its hash in the cache).
   *
   * The open uses O_PATH, which never calls into the file's filesystem (no FUSE or NFS open, no
   * flush on close), so it and the close run synchronously; the fstat, which can reach a slow or
   * hostile filesystem, runs on the thread pool. A cache hit thus costs one thread-pool round trip.
   * @throws ERR_ATTESTATION_FAILED when the peer exited, executed another binary, or its image
   * cannot be read; also when too many images wait to be hashed. ERR_PEER_EXECUTED when the image
   * is another file than at accept.
   */
  async inspect(facts: ProcessFacts): Promise<ExeImage> {
    const pathFd = openPathFd(join(this.#options.procRoot, String(facts.pid), 'exe'))
    try {
      if (!facts.isAlive()) throw failed('peer process exited during attestation')
      const target = readlinkSync(fdPath(pathFd))
      if (splitDeletedSuffix(target).path !== splitDeletedSuffix(facts.exe).path) {
        throw failed('peer executed another binary during attestation')
      }
      const stats = await fstatBigint(pathFd)
      if (stats.dev !== BigInt(facts.exeId.dev) || stats.ino !== BigInt(facts.exeId.ino)) {
        throw new IdentityError('ERR_PEER_EXECUTED', 'peer executed another binary since it connected')
      }
      const { path, isDeleted } = await resolveDeleted(target, stats)
      const { sha256, hashOutcome } = await this.#hashImage(pathFd, stats)
      return { path, isDeleted, sizeBytes: Number(stats.size), sha256, hashOutcome }
    } catch (err) {
      throw isIdentityError(err) ? err : failed('peer executable cannot be read', err)
    } finally {
      closeSync(pathFd)
    }
  }

  /** Stops the hashing workers. */
  close(): Promise<void> {
    return this.#pool.close()
  }

  async #hashImage(pathFd: number, stats: BigIntStats): Promise<Pick<ExeImage, 'sha256' | 'hashOutcome'>> {
    const limit = this.#options.hashSizeLimitBytes
    if (limit < 0) return { sha256: undefined, hashOutcome: 'disabled' }
    if (limit > 0 && stats.size > BigInt(limit)) return { sha256: undefined, hashOutcome: 'over-limit' }
    const key = cacheKeyOf(stats)
    const cached = this.#cache.get(key)
    if (cached !== undefined) return { sha256: cached, hashOutcome: 'cached' }
    let job = this.#jobs.get(key)
    if (job === undefined) {
      if (this.#jobs.size >= this.#options.maxPendingHashes) throw failed('too many executables to hash')
      job = this.#runJob(pathFd, key).finally(() => this.#jobs.delete(key))
      this.#jobs.set(key, job)
    }
    const sha256 = await job
    return sha256 === undefined ? { sha256, hashOutcome: 'unstable' } : { sha256, hashOutcome: 'hashed' }
  }

  /**
   * Reopens the very file behind `pathFd` (kept open by the caller until this settles) for
   * reading, hashes it on a worker, and caches the hash only if the file did not change meanwhile.
   */
  async #runJob(pathFd: number, key: string): Promise<string | undefined> {
    const handle = await open(fdPath(pathFd), 'r')
    try {
      const before = await handle.stat({ bigint: true })
      if (cacheKeyOf(before) !== key) return undefined
      const { hex, bytesRead } = await this.#pool.hashFd(handle.fd, Number(before.size))
      const after = await handle.stat({ bigint: true })
      if (bytesRead !== Number(before.size) || cacheKeyOf(after) !== key) return undefined
      this.#cache.set(key, hex)
      return hex
    } finally {
      await handle.close()
    }
  }
}

/** Linux's O_PATH (x86-64, arm64): a descriptor that names a file without opening it for I/O. */
const O_PATH = 0o10000000

function openPathFd(path: string): number {
  try {
    return openSync(path, O_PATH)
  } catch (err) {
    throw failed('peer executable cannot be opened', err)
  }
}

/** The magic link through which this process reaches its own descriptor `fd`. */
function fdPath(fd: number): string {
  return `/proc/self/fd/${fd}`
}

const fstatBigint = (fd: number) =>
  new Promise<BigIntStats>((resolve, reject) => {
    fstat(fd, { bigint: true }, (err, stats) => (err ? reject(err) : resolve(stats)))
  })

/**
 * Whether a target ending in ` (deleted)` means the file is gone: always when no link is left;
 * otherwise unless the suffixed path itself names this very file (a file really called so).
 */
async function resolveDeleted(
  target: string,
  stats: BigIntStats,
): Promise<{ path: string; isDeleted: boolean }> {
  const { path, hasSuffix } = splitDeletedSuffix(target)
  if (!hasSuffix) return { path, isDeleted: false }
  if (stats.nlink > 0n) {
    const named = await stat(target, { bigint: true }).catch(() => undefined)
    if (named !== undefined && named.dev === stats.dev && named.ino === stats.ino) {
      return { path: target, isDeleted: false }
    }
  }
  return { path, isDeleted: true }
}
