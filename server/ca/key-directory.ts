import { join } from 'node:path'
import { readTextIfExists, writePrivateFileAtomic } from '../../common/storage/private-file.js'
import { IdentityError } from '../../lib/core/errors.js'
import type { KeyJournalStore } from './key-journal.js'

const FILE_NAME = 'ca-journal.json'

/**
 * A {@link KeyJournalStore} in a directory (mode 0700) holding one file (mode 0600), written
 * atomically (see `writePrivateFileAtomic`): a crash leaves the old journal or the new one.
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
      return await readTextIfExists(this.path)
    } catch (err) {
      throw new IdentityError('ERR_KEY_STORE_IO', 'cannot read the key journal', { cause: err })
    }
  }

  async save(document: string): Promise<void> {
    try {
      await writePrivateFileAtomic(this.path, document)
    } catch (err) {
      throw new IdentityError('ERR_KEY_STORE_IO', 'cannot write the key journal', { cause: err })
    }
  }
}
