import { readTextIfExists, writePrivateFileAtomic } from '../../common/storage/private-file.js'
import type { TaskRequest } from '../../lib/core/task/task-request.js'
import type { ProcessIdentity } from './process-identity.js'

/** One task as the agent keeps it across a restart. */
export interface JournalRecord {
  readonly taskId: string
  readonly spiffeId: string
  readonly entryId: string
  readonly request: TaskRequest
  readonly parentTaskId?: string
  /** The process that began it; 0 when detached. */
  readonly pid: number
  readonly uid: number
  readonly begunAtMs: number
  readonly expiresAtMs: number
  /** That process's start time and executable when it began the task ('' when unknown). */
  readonly process: ProcessIdentity
  /** Set when the task has ended but the server has not been told yet. */
  readonly endedAtMs?: number
  readonly endReason?: 'ended' | 'exited'
}

interface JournalFile {
  readonly version: 1
  readonly tasks: ReadonlyArray<JournalRecord>
}

/**
 * The agent's tasks in `<data-dir>/tasks.json` (0600, written atomically): the live ones and those
 * whose end the server has not heard of, with the pid, start time and executable of the process that
 * began each, so that a restarted agent can watch those processes again. Writes are coalesced: one
 * at a time, each of the latest snapshot.
 */
export class TaskJournal {
  readonly #path: string
  readonly #snapshot: () => ReadonlyArray<JournalRecord>
  #wanted = 0
  #written = 0
  #writing: Promise<void> | undefined

  constructor(path: string, snapshot: () => ReadonlyArray<JournalRecord>) {
    this.#path = path
    this.#snapshot = snapshot
  }

  /** The saved records; none when there is no file. @throws when the file is unreadable or malformed */
  async load(): Promise<ReadonlyArray<JournalRecord>> {
    const text = await readTextIfExists(this.#path)
    if (text === undefined) return []
    const doc = JSON.parse(text) as JournalFile
    if (doc.version !== 1 || !Array.isArray(doc.tasks)) throw new Error('unknown task journal version')
    return doc.tasks.filter(isRecord)
  }

  /** Writes the current snapshot; resolves once a write that began after this call has finished. */
  async save(): Promise<void> {
    const wanted = ++this.#wanted
    while (this.#written < wanted) {
      if (this.#writing === undefined) {
        const generation = this.#wanted
        const file: JournalFile = { version: 1, tasks: this.#snapshot() }
        this.#writing = writePrivateFileAtomic(this.#path, JSON.stringify(file))
          .then(() => {
            this.#written = Math.max(this.#written, generation)
          })
          .finally(() => {
            this.#writing = undefined
          })
      }
      await this.#writing
    }
  }
}

function isRecord(r: unknown): r is JournalRecord {
  const t = r as Partial<JournalRecord> | null
  return (
    typeof t === 'object' &&
    t !== null &&
    typeof t.taskId === 'string' &&
    typeof t.spiffeId === 'string' &&
    typeof t.entryId === 'string' &&
    typeof t.pid === 'number' &&
    typeof t.uid === 'number' &&
    typeof t.begunAtMs === 'number' &&
    typeof t.expiresAtMs === 'number' &&
    typeof t.request === 'object' &&
    t.request !== null &&
    Array.isArray(t.request.audiences) &&
    Array.isArray(t.request.scopes) &&
    typeof t.process?.startTime === 'string' &&
    typeof t.process.exe === 'string'
  )
}
