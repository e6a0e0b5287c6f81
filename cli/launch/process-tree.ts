import { parentPidOf } from '../../common/peercred/process-facts.js'

/** Deeper chains than this are not followed (a tree that deep is refused, not walked forever). */
export const MAX_TREE_DEPTH = 128

/**
 * Whether `pid` is `rootPid` or one of its descendants, by the `/proc/<pid>/stat` ppid chain. Races
 * only ever answer no: a process whose parent exits is reparented out of the tree (to init or a
 * subreaper), never into it; a process that escapes that way (double fork and the parent exits)
 * loses access, which docs/launch.md says.
 */
export async function isInTree(pid: number, rootPid: number, procRoot = '/proc'): Promise<boolean> {
  let current = pid
  for (let depth = 0; depth <= MAX_TREE_DEPTH; depth++) {
    if (current === rootPid) return true
    if (current <= 1) return false
    try {
      current = await parentPidOf(current, procRoot)
    } catch {
      return false
    }
  }
  return false
}
