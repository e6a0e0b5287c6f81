import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readdir, realpath, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { type InterpreterHashes, isInterpreterName } from '../../lib/core/interpreter-pins.js'

/** Where interpreters usually live; the running Node's own directory is added. */
export const INTERPRETER_DIRS: ReadonlyArray<string> = [
  '/usr/bin',
  '/bin',
  '/usr/local/bin',
  '/usr/sbin',
  '/sbin',
  '/usr/libexec',
  '/opt/homebrew/bin',
]
/** Files larger than this are not hashed (no interpreter is this big; it bounds the work). */
const MAX_HASHED_BYTES = 512 * 1024 * 1024

function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256')
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')))
  })
}

async function candidatesIn(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[])
  return names.filter(isInterpreterName).map((n) => join(dir, n))
}

/**
 * The sha256 of every interpreter found on this host (by name, in {@link INTERPRETER_DIRS} and next to
 * the running Node), mapped to one of its paths. Symlinks are followed and each file is hashed once,
 * one at a time, streamed (off the event loop's critical path). Unreadable files are skipped.
 */
export async function findInterpreterHashes(
  dirs: ReadonlyArray<string> = [...INTERPRETER_DIRS, dirname(process.execPath)],
): Promise<InterpreterHashes> {
  const paths = [process.execPath]
  for (const dir of new Set(dirs)) paths.push(...(await candidatesIn(dir)))
  const byHash = new Map<string, string>()
  const seen = new Set<string>()
  for (const path of paths) {
    try {
      const real = await realpath(path)
      if (seen.has(real)) continue
      seen.add(real)
      const info = await stat(real)
      if (!info.isFile() || info.size > MAX_HASHED_BYTES) continue
      const hash = await sha256File(real)
      if (!byHash.has(hash)) byHash.set(hash, path)
    } catch {
      // Vanished or unreadable: nothing to compare with.
    }
  }
  return byHash
}
