import { chmod, lstat, mkdir, unlink } from 'node:fs/promises'
import { connect } from 'node:net'
import { dirname } from 'node:path'
import { IdentityError } from '../../lib/core/errors.js'

/**
 * Makes `path` ready for a Unix-socket bind: `mkdir -p` of its directory, with exactly `dirMode` on
 * a directory it creates (an existing one is left as is); a stale socket file is removed.
 * @throws ERR_CONFIG_INVALID when a live server holds the path, or it is not a socket.
 */
export async function prepareSocketPath(path: string, dirMode: number): Promise<void> {
  const dir = dirname(path)
  if ((await mkdir(dir, { recursive: true, mode: dirMode })) !== undefined) await chmod(dir, dirMode)
  const existing = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined
    throw err
  })
  if (!existing) return
  if (!existing.isSocket())
    throw new IdentityError('ERR_CONFIG_INVALID', `${path} exists and is not a socket`)
  if (await isListening(path))
    throw new IdentityError('ERR_CONFIG_INVALID', `${path} is in use by a live server`)
  await unlink(path)
}

/** Whether something accepts connections on the Unix socket at `path`. */
function isListening(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path)
    probe.once('connect', () => {
      probe.destroy()
      resolve(true)
    })
    probe.once('error', () => resolve(false))
  })
}

/**
 * Removes the socket file at `path` if it is still the inode `ino` (libuv usually removed it already
 * on close; another server may have bound the path since).
 */
export async function unlinkIfSame(path: string, ino: number | undefined): Promise<void> {
  if (ino === undefined) return
  const current = await lstat(path).catch(() => undefined)
  if (current?.ino === ino) await unlink(path).catch(() => {})
}
