import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { type Clock, systemClock } from '../../../lib/core/clock.js'
import { type IdNameParser, indexIdNames, parseGroupLine, parsePasswdLine } from './etc-files.js'

/** The part of a pino logger this module uses. */
export interface WarnLog {
  warn(fields: Record<string, unknown>, msg: string): void
}

/** Options for {@link UserDb}. */
export interface UserDbOptions {
  /** Directory holding `passwd` and `group`; default `/etc`. */
  readonly etcRoot?: string
  /** How long a read stays trusted before the files are stat'ed again; default 1000 ms. */
  readonly recheckIntervalMs?: number
  /** Files larger than this are not read (names are then omitted); default 64 MiB. */
  readonly maxFileBytes?: number
}

/** Dependencies of {@link UserDb}. */
export interface UserDbDeps {
  readonly clock?: Clock
  readonly log?: WarnLog
}

/** User and group names as of the last (re)read; `undefined` when the id has no entry. */
export interface NameLookup {
  userName(uid: number): string | undefined
  groupName(gid: number): string | undefined
}

const DEFAULT_RECHECK_INTERVAL_MS = 1000
const DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024

/** One of the two files: parsed once, re-read when its (inode, size, mtime, ctime) changes. */
class WatchedIdFile {
  readonly #path: string
  readonly #parse: IdNameParser
  readonly #options: Required<UserDbOptions>
  readonly #deps: Required<Pick<UserDbDeps, 'clock'>> & UserDbDeps
  #names: ReadonlyMap<number, string> = new Map()
  #version: string | undefined
  #checkedAtMs = Number.NEGATIVE_INFINITY
  #refreshing: Promise<void> | undefined

  constructor(path: string, parse: IdNameParser, options: Required<UserDbOptions>, deps: UserDbDeps) {
    this.#path = path
    this.#parse = parse
    this.#options = options
    this.#deps = { ...deps, clock: deps.clock ?? systemClock }
  }

  /** The current names; stats the file first when the last check is older than the interval. */
  async names(): Promise<ReadonlyMap<number, string>> {
    const dueAtMs = this.#checkedAtMs + this.#options.recheckIntervalMs
    if (this.#version === undefined || this.#deps.clock.nowMs() >= dueAtMs) {
      this.#refreshing ??= this.#refresh().finally(() => {
        this.#refreshing = undefined
      })
      await this.#refreshing
    }
    return this.#names
  }

  async #refresh(): Promise<void> {
    try {
      const s = await stat(this.#path, { bigint: true })
      const version = `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`
      if (version !== this.#version) {
        if (s.size > BigInt(this.#options.maxFileBytes)) throw new RangeError('file exceeds maxFileBytes')
        this.#names = await indexIdNames(await readFile(this.#path, 'utf8'), this.#parse)
        this.#version = version
      }
    } catch (err) {
      // Lookups fail closed: the name selectors are omitted (spec §8) until the file is readable.
      if (this.#version !== 'unreadable')
        this.#deps.log?.warn({ err, path: this.#path }, 'names file unreadable')
      this.#names = new Map()
      this.#version = 'unreadable'
    }
    this.#checkedAtMs = this.#deps.clock.nowMs()
  }
}

/**
 * User and group names from `passwd` and `group` under a configurable root (files only, no NSS).
 * Each file is parsed once, off the hot path, and re-read when it changes; the change check runs
 * at most once per `recheckIntervalMs`, so a lookup usually costs two map reads.
 */
export class UserDb {
  readonly #passwd: WatchedIdFile
  readonly #group: WatchedIdFile

  constructor(options: UserDbOptions = {}, deps: UserDbDeps = {}) {
    const resolved: Required<UserDbOptions> = {
      etcRoot: options.etcRoot ?? '/etc',
      recheckIntervalMs: options.recheckIntervalMs ?? DEFAULT_RECHECK_INTERVAL_MS,
      maxFileBytes: options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES,
    }
    this.#passwd = new WatchedIdFile(join(resolved.etcRoot, 'passwd'), parsePasswdLine, resolved, deps)
    this.#group = new WatchedIdFile(join(resolved.etcRoot, 'group'), parseGroupLine, resolved, deps)
  }

  /** A lookup over the current files, refreshing them first when their check is due. Never throws. */
  async lookup(): Promise<NameLookup> {
    const [users, groups] = await Promise.all([this.#passwd.names(), this.#group.names()])
    return { userName: (uid) => users.get(uid), groupName: (gid) => groups.get(gid) }
  }
}
