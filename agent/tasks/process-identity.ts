import { readFile, readlink } from 'node:fs/promises'
import { closeFd, pidfdIsAlive, pidfdOpen } from '../../common/peercred/peercred.js'
import type { ProcessWatch } from './process-watch.js'

/** What tells one process from a later one that took its pid: its start time and its executable. */
export interface ProcessIdentity {
  /** Field 22 of `/proc/<pid>/stat`: clock ticks after boot. */
  readonly startTime: string
  /** Where `/proc/<pid>/exe` points. */
  readonly exe: string
}

/** Largest `/proc/<pid>/stat` read. */
const MAX_STAT_BYTES = 4096

/**
 * The start time and executable of the process `pid` now; undefined when it is gone or unreadable.
 * The caller proves the answer is its process's by a pidfd opened before and alive after.
 */
export async function identifyProcess(pid: number): Promise<ProcessIdentity | undefined> {
  try {
    const [stat, exe] = await Promise.all([
      readFile(`/proc/${pid}/stat`, 'utf8'),
      readlink(`/proc/${pid}/exe`),
    ])
    if (stat.length > MAX_STAT_BYTES) return undefined
    const fields = stat
      .slice(stat.lastIndexOf(')') + 1)
      .trim()
      .split(/\s+/)
    const startTime = fields[22 - 3]
    if (startTime === undefined || !/^\d+$/.test(startTime)) return undefined
    return { startTime, exe }
  } catch {
    return undefined
  }
}

/** A watch of nothing: the process is gone, or cannot be proven the one that began the task. */
export const ENDED_WATCH: ProcessWatch = { isAlive: () => false, close: () => {} }

/**
 * After an agent restart: a watch of the process `pid` if it is still the very one recorded (its
 * pidfd opened, then the same start time and executable read, then the pidfd still alive: a pid taken
 * over meanwhile shows another start time), else {@link ENDED_WATCH}.
 */
export async function rewatchProcess(pid: number, recorded: ProcessIdentity): Promise<ProcessWatch> {
  if (pid <= 0 || recorded.startTime === '') return ENDED_WATCH
  let pidfd: number
  try {
    pidfd = pidfdOpen(pid)
  } catch {
    return ENDED_WATCH
  }
  let open = true
  const close = () => {
    if (!open) return
    open = false
    closeFd(pidfd)
  }
  const now = await identifyProcess(pid)
  const isSame = now !== undefined && now.startTime === recorded.startTime && now.exe === recorded.exe
  if (!isSame || !pidfdIsAlive(pidfd)) {
    close()
    return ENDED_WATCH
  }
  return { isAlive: () => open && pidfdIsAlive(pidfd), close }
}
