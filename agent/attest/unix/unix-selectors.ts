import type { CgroupEntry } from '../../../common/peercred/process-facts.js'
import { normalizeSelectors, Selector } from '../../../lib/core/selector.js'

/** What the kernel appends to a `/proc/<pid>/exe` target whose file was unlinked or replaced. */
export const DELETED_SUFFIX = ' (deleted)'

/** Everything the unix selectors are built from, already verified to belong to the caller. */
export interface UnixSelectorInput {
  readonly uid: number
  readonly gid: number
  /** The `Groups:` line of `/proc/<pid>/status`. */
  readonly groups: readonly number[]
  /** The user name for a uid, or `undefined` when the lookup fails (the selector is then omitted). */
  readonly userName: (uid: number) => string | undefined
  /** The group name for a gid, or `undefined` when the lookup fails. */
  readonly groupName: (gid: number) => string | undefined
  /** The executable's path, without the ` (deleted)` suffix. */
  readonly exePath: string
  /** Hex SHA-256 of the running image; `undefined` when hashing was skipped. */
  readonly sha256: string | undefined
  /** Paths from {@link unifiedCgroupPaths}. */
  readonly cgroupPaths: readonly string[]
}

/**
 * The `unix` selectors of spec §8 plus `unix:cgroup` (DESIGN §6), distinct and sorted. A value
 * the selector rules refuse (a name with whitespace, a path with control characters, a cgroup
 * path outside our cgroup namespace such as `/../x`) is omitted: such a workload can never match
 * an entry that names it, which is the safe failure.
 */
export function buildUnixSelectors(input: UnixSelectorInput): readonly Selector[] {
  const values: (string | undefined)[] = [`uid:${input.uid}`, `gid:${input.gid}`]
  values.push(named('user', input.userName(input.uid)), named('group', input.groupName(input.gid)))
  for (const gid of input.groups) {
    values.push(`supplementary_gid:${gid}`, named('supplementary_group', input.groupName(gid)))
  }
  values.push(`path:${input.exePath}`)
  if (input.sha256 !== undefined) values.push(`sha256:${input.sha256}`)
  for (const path of input.cgroupPaths) values.push(`cgroup:${path}`)
  const selectors: Selector[] = []
  for (const value of values) {
    const selector = value === undefined ? undefined : tryUnixSelector(value)
    if (selector !== undefined) selectors.push(selector)
  }
  return normalizeSelectors(selectors)
}

function named(kind: string, name: string | undefined): string | undefined {
  return name === undefined ? undefined : `${kind}:${name}`
}

function tryUnixSelector(value: string): Selector | undefined {
  try {
    return Selector.from('unix', value)
  } catch {
    return undefined
  }
}

/**
 * The cgroup v2 (unified hierarchy, `0::/path`) paths of a process. Cgroup v1 lines are left out
 * on purpose: their paths are per controller, and a bare `unix:cgroup:/x` could not say which
 * hierarchy it meant, so a v1 path could satisfy an entry written for the v2 one.
 */
export function unifiedCgroupPaths(cgroups: readonly CgroupEntry[]): readonly string[] {
  return cgroups.filter((c) => c.hierarchyId === 0 && c.controllers.length === 0).map((c) => c.path)
}

/** Splits the kernel's ` (deleted)` suffix off an exe target: `{ path, hasSuffix }`. */
export function splitDeletedSuffix(target: string): { readonly path: string; readonly hasSuffix: boolean } {
  return target.endsWith(DELETED_SUFFIX)
    ? { path: target.slice(0, -DELETED_SUFFIX.length), hasSuffix: true }
    : { path: target, hasSuffix: false }
}
