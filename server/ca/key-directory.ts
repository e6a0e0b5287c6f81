import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { IdentityError } from '../../lib/core/errors.js'
import type { KeyJournalStore } from './key-journal.js'

const FILE_NAME = 'ca-journal.json'

/**
 * A {@link KeyJournalStore} in a directory (mode 0700) holding one file (mode 0600).
 * Writes go to a temp file that is fsynced and renamed over the old one, then the directory is fsynced,
 * so a crash leaves either the old journal or the new one, never a torn file.
 */
export class KeyDirectory implements KeyJournalStore {
  readonly #dir: string

  constructor(dir: string) {
    this.#dir = dir
  }

  get path(): string {
    return join(this.#dir, FILE_NAME)
  }

  async load(): Promise<string | undefined> {
    try {
      return await readFile(this.path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw new IdentityError('ERR_KEY_STORE_IO', 'cannot read the key journal', { cause: err })
    }
  }

  async save(document: string): Promise<void> {
    const tmp = `${this.path}.${process.pid}.tmp`
    try {
      await mkdir(this.#dir, { recursive: true, mode: 0o700 })
      const fh = await open(tmp, 'w', 0o600)
      try {
        await fh.chmod(0o600)
        await fh.writeFile(document, 'utf8')
        await fh.sync()
      } finally {
        await fh.close()
      }
      await rename(tmp, this.path)
      const dh = await open(this.#dir, 'r')
      try {
        await dh.sync()
      } finally {
        await dh.close()
      }
    } catch (err) {
      await unlink(tmp).catch(() => undefined)
      throw new IdentityError('ERR_KEY_STORE_IO', 'cannot write the key journal', { cause: err })
    }
  }
}
