import { randomUUID } from 'node:crypto'
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'

/** Mode of files that hold private keys: readable by their owner only. */
export const PRIVATE_FILE_MODE = 0o600
/** Mode of directories created to hold such files. */
export const PRIVATE_DIR_MODE = 0o700

/**
 * Writes `content` to `path` so that a crash leaves either the old file or the new one, never a torn
 * or briefly world-readable file: a temp file created 0600 beside it, fsynced, renamed over `path`,
 * then the directory fsynced. The directory is created 0700 when missing.
 */
export async function writePrivateFileAtomic(path: string, content: string | Uint8Array): Promise<void> {
  const dir = dirname(path)
  const tmp = `${path}.${process.pid}.${randomUUID()}.tmp`
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE })
  try {
    const fh = await open(tmp, 'wx', PRIVATE_FILE_MODE)
    try {
      await fh.chmod(PRIVATE_FILE_MODE)
      await fh.writeFile(content)
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, path)
    const dh = await open(dir, 'r')
    try {
      await dh.sync()
    } finally {
      await dh.close()
    }
  } catch (err) {
    await unlink(tmp).catch(() => undefined)
    throw err
  }
}

/** The file's text, or undefined when it does not exist. */
export async function readTextIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}
