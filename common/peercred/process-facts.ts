import { readlinkSync } from 'node:fs'
import { open, readlink, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { IdentityError } from '../../lib/core/errors.js'
import { closeFd, errnoOf, getPeerCred, getPeerPidfd, pidfdIsAlive, pidfdOpen } from './peercred.js'

/** One line of `/proc/<pid>/cgroup`: `hierarchy-ID:controller-list:cgroup-path`. */
export interface CgroupEntry {
  readonly hierarchyId: number
  /** Empty for the cgroup v2 unified hierarchy (`0::/path`). */
  readonly controllers: readonly string[]
  readonly path: string
}

/** Options for {@link readProcessFacts}. */
export interface ProcessFactsOptions {
  /** The `/proc` root (SPIRE's `HOST_PROC`), from config; default `/proc`. */
  readonly procRoot?: string
  /** `false` forces the weaker fallback used on kernels without SO_PEERPIDFD; default `true`. */
  readonly usePeerPidfd?: boolean
  /** Upper bound on the bytes read from each `/proc` file; default 64 KiB. */
  readonly maxProcFileBytes?: number
}

/**
 * Facts about a Unix-socket peer process, verified to belong to the process that connected. Holds
 * a pidfd for the connection's life: call {@link ProcessFacts.isAlive} before trusting the facts
 * again later (e.g. before each stream send) and {@link ProcessFacts.close} when the connection ends.
 */
export interface ProcessFacts {
  readonly pid: number
  /** Effective uid (2nd field of `Uid:` in `/proc/<pid>/status`); equals SO_PEERCRED's uid. */
  readonly uid: number
  /** Effective gid (2nd field of `Gid:`); equals SO_PEERCRED's gid. */
  readonly gid: number
  /** Supplementary groups (the `Groups:` line). */
  readonly groups: readonly number[]
  /** Target of `/proc/<pid>/exe` (may end in ` (deleted)`). */
  readonly exe: string
  /**
   * The running image's file as (dev, inode), read at accept just before {@link ProcessFacts.exe}:
   * what identifies the binary for the connection's life (DESIGN §6.1), not the path string.
   */
  readonly exeId: ExeId
  readonly cgroups: readonly CgroupEntry[]
  /** True when SO_PEERPIDFD was unavailable: pidfd_open + start-time checks, which pid reuse *before* accept can fool. */
  readonly weak: boolean
  /** Whether the peer process still exists; false once closed. */
  isAlive(): boolean
  /**
   * Reads the target of `/proc/<pid>/exe` again, now (procfs only: it never reaches the
   * executable's own filesystem). Trust it only if {@link ProcessFacts.isAlive} holds afterwards.
   * @throws ERR_PEER_UNAUTHORIZED when it cannot be read (the peer exited, or this was closed).
   */
  readExe(): string
  /** Releases the pidfd; idempotent. */
  close(): void
}

/** A file's identity: device and inode numbers (`stat(2)`'s `st_dev`, `st_ino`). */
export interface ExeId {
  readonly dev: number
  readonly ino: number
}

interface StatusFacts {
  readonly uid: number
  readonly gid: number
  readonly groups: readonly number[]
}

const DEFAULT_MAX_PROC_FILE_BYTES = 64 * 1024

function refuse(message: string, cause?: unknown): IdentityError {
  return new IdentityError('ERR_PEER_UNAUTHORIZED', message, cause === undefined ? undefined : { cause })
}

/**
 * Attests the peer of a connected Unix socket, race-free (DESIGN §5): SO_PEERCRED + SO_PEERPIDFD,
 * then `/proc/<pid>/{status,exe,cgroup}`, then a liveness check on the pidfd — only a peer still
 * alive at that point proves the `/proc` data was its own (a live pid cannot have been reused).
 * Without SO_PEERPIDFD: pidfd_open(pid) + start time before and after, and `weak: true`.
 * @throws ERR_PEER_UNAUTHORIZED when the peer is gone, unreadable, or its credentials changed.
 */
export async function readProcessFacts(fd: number, options: ProcessFactsOptions = {}): Promise<ProcessFacts> {
  const cred = getPeerCred(fd)
  if (cred.pid <= 0) throw refuse('peer pid is not visible from this pid namespace')
  const { pidfd, weak } = openPeerPidfd(fd, cred.pid, options.usePeerPidfd ?? true)
  try {
    const procDir = join(options.procRoot ?? '/proc', String(cred.pid))
    const maxBytes = options.maxProcFileBytes ?? DEFAULT_MAX_PROC_FILE_BYTES
    const facts = await readProcDir(procDir, maxBytes, weak)
    if (!pidfdIsAlive(pidfd)) throw refuse('peer process exited during attestation')
    if (facts.uid !== cred.uid || facts.gid !== cred.gid) {
      throw refuse('peer credentials changed since connect')
    }
    return new PeerProcess({ ...facts, pid: cred.pid, weak }, pidfd, procDir)
  } catch (err) {
    closeFd(pidfd)
    throw err instanceof IdentityError ? err : refuse('peer process facts unreadable', err)
  }
}

/**
 * The facts of a process named by pid, for a delegate acting on its behalf (DESIGN §13): pidfd_open,
 * then its start time must equal `startTime` (what the delegate read while it held its own pidfd of
 * the process: another process that took the pid since has another), then `/proc` as for a socket
 * peer, then the start time again and the pidfd's liveness.
 * @throws ERR_DELEGATE_SUBJECT_GONE when no such process exists or it is not the one meant
 */
export async function readProcessFactsOfPid(
  pid: number,
  startTime: string,
  options: ProcessFactsOptions = {},
): Promise<ProcessFacts> {
  const gone = (why: string, cause?: unknown) =>
    new IdentityError('ERR_DELEGATE_SUBJECT_GONE', `process ${pid} ${why}`, cause ? { cause } : undefined)
  if (!Number.isSafeInteger(pid) || pid <= 0) throw gone('is not a valid pid')
  let pidfd: number
  try {
    pidfd = pidfdOpen(pid)
  } catch (err) {
    throw gone('does not exist', err)
  }
  try {
    const procDir = join(options.procRoot ?? '/proc', String(pid))
    const maxBytes = options.maxProcFileBytes ?? DEFAULT_MAX_PROC_FILE_BYTES
    if ((await readStartTime(procDir, maxBytes)) !== startTime) throw gone('is not the process meant')
    const facts = await readProcDir(procDir, maxBytes, true)
    if (!pidfdIsAlive(pidfd)) throw gone('exited during attestation')
    // Not `weak`: the start time to match was read by a delegate that held its own pidfd of the
    // process, so a pid reused before this pidfd_open shows as another start time.
    return new PeerProcess({ ...facts, pid, weak: false }, pidfd, procDir)
  } catch (err) {
    closeFd(pidfd)
    throw err instanceof IdentityError && err.code === 'ERR_DELEGATE_SUBJECT_GONE'
      ? err
      : gone('cannot be attested', err)
  }
}

/**
 * A process's start time (field 22 of `/proc/<pid>/stat`, clock ticks since boot), as a string.
 * @throws ERR_PEER_UNAUTHORIZED when it cannot be read
 */
export function processStartTime(pid: number, procRoot = '/proc'): Promise<string> {
  return readStartTime(join(procRoot, String(pid)), DEFAULT_MAX_PROC_FILE_BYTES)
}

/**
 * The parent pid (field 4 of `/proc/<pid>/stat`).
 * @throws ERR_PEER_UNAUTHORIZED when it cannot be read (the process is gone)
 */
export async function parentPidOf(pid: number, procRoot = '/proc'): Promise<number> {
  const stat = await readBounded(join(procRoot, String(pid), 'stat'), DEFAULT_MAX_PROC_FILE_BYTES)
  const ppid = stat
    .slice(stat.lastIndexOf(')') + 1)
    .trim()
    .split(/\s+/)[1]
  if (!ppid || !/^\d+$/.test(ppid)) throw refuse('parent pid unreadable')
  return Number(ppid)
}

function openPeerPidfd(fd: number, pid: number, usePeerPidfd: boolean): { pidfd: number; weak: boolean } {
  if (usePeerPidfd) {
    try {
      return { pidfd: getPeerPidfd(fd), weak: false }
    } catch (err) {
      // Kernels < 6.5 lack SO_PEERPIDFD; any other failure (e.g. the peer already exited) refuses.
      if (errnoOf(err) !== 'ENOPROTOOPT') throw refuse('peer pidfd unavailable', err)
    }
  }
  return { pidfd: pidfdOpen(pid), weak: true }
}

type ProcDirFacts = StatusFacts & {
  readonly exe: string
  readonly exeId: ExeId
  readonly cgroups: readonly CgroupEntry[]
}

async function readProcDir(procDir: string, maxBytes: number, weak: boolean): Promise<ProcDirFacts> {
  const startBefore = weak ? await readStartTime(procDir, maxBytes) : undefined
  // The image's (dev, inode) first, then its path: an exec in between leaves them disagreeing, and
  // the binding check after accept (same dev, inode now) then refuses the connection.
  const image = await stat(join(procDir, 'exe'))
  const [status, exe, cgroup] = await Promise.all([
    readBounded(join(procDir, 'status'), maxBytes),
    readlink(join(procDir, 'exe')),
    readBounded(join(procDir, 'cgroup'), maxBytes),
  ])
  if (startBefore !== undefined && startBefore !== (await readStartTime(procDir, maxBytes))) {
    throw refuse('peer pid was reused during attestation')
  }
  const exeId = { dev: image.dev, ino: image.ino }
  return { ...parseStatus(status), exe, exeId, cgroups: parseCgroups(cgroup) }
}

/** Field 22 of `/proc/<pid>/stat` (start time in clock ticks), parsed after the last `)`. */
async function readStartTime(procDir: string, maxBytes: number): Promise<string> {
  const stat = await readBounded(join(procDir, 'stat'), maxBytes)
  const fields = stat
    .slice(stat.lastIndexOf(')') + 1)
    .trim()
    .split(/\s+/)
  const startTime = fields[22 - 3]
  if (!startTime || !/^\d+$/.test(startTime)) throw refuse('peer start time unreadable')
  return startTime
}

/**
 * Reads a whole (procfs) file, refusing anything over `maxBytes`. procfs hands over a whole file in
 * one read when the buffer is large enough, so a read that ends on a newline is taken as the end
 * (saving a threadpool round trip per file); otherwise reading goes on until EOF, so a short read
 * can never truncate a fact.
 */
async function readBounded(path: string, maxBytes: number): Promise<string> {
  const handle = await open(path, 'r')
  try {
    const buffer = Buffer.allocUnsafe(maxBytes + 1)
    let total = 0
    do {
      const { bytesRead } = await handle.read(buffer, total, maxBytes + 1 - total, null)
      if (bytesRead === 0) break
      total += bytesRead
      if (total > maxBytes) throw refuse(`${path} exceeds ${maxBytes} bytes`)
    } while (buffer[total - 1] !== 0x0a)
    return buffer.toString('utf8', 0, total)
  } finally {
    await handle.close()
  }
}

/** The effective uid/gid (2nd field of `Uid:`/`Gid:`) and the `Groups:` line of `/proc/<pid>/status`. */
function parseStatus(status: string): StatusFacts {
  const field = (name: string) =>
    status
      .match(new RegExp(`^${name}:(.*)$`, 'm'))?.[1]
      ?.trim()
      .split(/\s+/)
  const ids = (values: string[] | undefined) => (values ?? []).filter((v) => v !== '').map(parseId)
  const uid = ids(field('Uid'))[1]
  const gid = ids(field('Gid'))[1]
  if (uid === undefined || gid === undefined) throw refuse('peer status lacks Uid/Gid')
  return { uid, gid, groups: ids(field('Groups')) }
}

function parseId(text: string): number {
  if (!/^\d{1,10}$/.test(text)) throw refuse('peer status has a malformed id')
  return Number(text)
}

/** Parses `/proc/<pid>/cgroup`; the path is everything after the second colon. */
function parseCgroups(text: string): CgroupEntry[] {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const first = line.indexOf(':')
      const second = line.indexOf(':', first + 1)
      if (first < 1 || second < 0) throw refuse('peer cgroup file is malformed')
      const controllers = line.slice(first + 1, second)
      return {
        hierarchyId: Number(line.slice(0, first)),
        controllers: controllers === '' ? [] : controllers.split(','),
        path: line.slice(second + 1),
      }
    })
}

/** The attested facts plus the pidfd kept for the connection's life. */
class PeerProcess implements ProcessFacts {
  readonly pid: number
  readonly uid: number
  readonly gid: number
  readonly groups: readonly number[]
  readonly exe: string
  readonly exeId: ExeId
  readonly cgroups: readonly CgroupEntry[]
  readonly weak: boolean
  readonly #procDir: string
  #pidfd: number | undefined

  constructor(facts: Omit<ProcessFacts, 'isAlive' | 'readExe' | 'close'>, pidfd: number, procDir: string) {
    this.pid = facts.pid
    this.uid = facts.uid
    this.gid = facts.gid
    this.groups = Object.freeze([...facts.groups])
    this.exe = facts.exe
    this.exeId = Object.freeze({ ...facts.exeId })
    this.cgroups = Object.freeze(facts.cgroups.map((c) => Object.freeze({ ...c })))
    this.weak = facts.weak
    this.#pidfd = pidfd
    this.#procDir = procDir
  }

  isAlive(): boolean {
    return this.#pidfd !== undefined && pidfdIsAlive(this.#pidfd)
  }

  readExe(): string {
    if (this.#pidfd === undefined) throw refuse('process facts were closed')
    try {
      return readlinkSync(join(this.#procDir, 'exe'))
    } catch (err) {
      throw refuse('peer executable unreadable', err)
    }
  }

  close(): void {
    if (this.#pidfd === undefined) return
    const pidfd = this.#pidfd
    this.#pidfd = undefined
    closeFd(pidfd)
  }
}
