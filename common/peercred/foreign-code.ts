import { open } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

/**
 * Directories whose executable files count as the system's own libraries (root-owned on any sane
 * host). A mapped executable object anywhere else is foreign code unless it lies in the binary's
 * own install tree.
 */
export const SYSTEM_LIBRARY_DIRS: readonly string[] = [
  '/lib/',
  '/lib32/',
  '/lib64/',
  '/libx32/',
  '/usr/lib/',
  '/usr/lib32/',
  '/usr/lib64/',
  '/usr/libx32/',
  '/usr/local/lib/',
  '/usr/local/lib64/',
]

/** Loader variables that put code of the caller's choosing into a process before its own. */
const LOADER_VARIABLES = ['LD_PRELOAD', 'LD_AUDIT', 'LD_LIBRARY_PATH']
const DELETED = ' (deleted)'
const MAX_ENVIRON_BYTES = 1024 * 1024
const MAX_MAPS_BYTES = 8 * 1024 * 1024
const MAPS_LINE = /^\S+ (\S{4}) \S+ \S+ \S+\s+(\/.*)$/

/**
 * Why a process may be running code that its executable's hash does not vouch for, or undefined:
 * a loader variable (`LD_PRELOAD`, `LD_AUDIT`, `LD_LIBRARY_PATH`) in its initial environment, or an
 * executable file mapping outside {@link SYSTEM_LIBRARY_DIRS} and the binary's install tree (the
 * directory above its `bin/`, or its own directory). A file that cannot be read counts as foreign.
 * Reads `/proc/<pid>/{environ,maps}`: call it while the process's pidfd is known to be alive.
 */
export async function findForeignCode(procDir: string, exe: string): Promise<string | undefined> {
  const [environ, maps] = await Promise.all([
    readAll(join(procDir, 'environ'), MAX_ENVIRON_BYTES),
    readAll(join(procDir, 'maps'), MAX_MAPS_BYTES),
  ])
  if (environ === undefined) return 'its environment cannot be read'
  for (const entry of environ.split('\0')) {
    const name = LOADER_VARIABLES.find((v) => entry.startsWith(`${v}=`) && entry.length > v.length + 1)
    if (name) return `${name} is set in its initial environment`
  }
  if (maps === undefined) return 'its memory map cannot be read'
  const tree = installTree(exe)
  for (const line of maps.split('\n')) {
    const [, perms, mapped] = MAPS_LINE.exec(line) ?? []
    if (perms?.[2] !== 'x' || mapped === undefined || mapped === exe) continue
    const path = mapped.endsWith(DELETED) ? mapped.slice(0, -DELETED.length) : mapped
    if (!SYSTEM_LIBRARY_DIRS.some((d) => path.startsWith(d)) && !path.startsWith(tree)) {
      return `it maps executable code from ${path}`
    }
  }
  return undefined
}

/** `/opt/app/bin/app` → `/opt/app/`; `/usr/bin/sleep` → `/usr/`; `/bin/sleep` → `/bin/`; `/x/app` → `/x/`. */
function installTree(exe: string): string {
  const dir = dirname(exe.endsWith(DELETED) ? exe.slice(0, -DELETED.length) : exe)
  const name = basename(dir)
  const root = name === 'bin' || name === 'sbin' ? dirname(dir) : dir
  return root === '/' ? `${dir}/` : `${root}/`
}

/** The whole file as latin1 text, or undefined when it cannot be read or is larger than `maxBytes`. */
async function readAll(path: string, maxBytes: number): Promise<string | undefined> {
  let handle: Awaited<ReturnType<typeof open>> | undefined
  try {
    handle = await open(path, 'r')
    const buffer = Buffer.allocUnsafe(Math.min(maxBytes + 1, 256 * 1024))
    const chunks: Buffer[] = []
    let total = 0
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null)
      if (bytesRead === 0) break
      total += bytesRead
      if (total > maxBytes) return undefined
      chunks.push(Buffer.from(buffer.subarray(0, bytesRead)))
    }
    return Buffer.concat(chunks).toString('latin1')
  } catch {
    return undefined
  } finally {
    await handle?.close()
  }
}
