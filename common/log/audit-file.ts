import { closeSync, fdatasyncSync, fstatSync, ftruncateSync, readSync, writeSync } from 'node:fs'
import { IdentityError } from '../../lib/core/errors.js'

/**
 * What a writer that keeps the audit in a file adds to it, for changes that must be audited before
 * they commit (DESIGN §7): the server writes a change's lines inside its datastore transaction,
 * makes them durable with {@link AuditJournal.sync} before COMMIT, and takes them back with
 * {@link AuditJournal.rewind} when COMMIT itself fails.
 */
export interface AuditJournal {
  /** Where the next line will start: after the last complete line. */
  mark(): number
  /** Makes every line written so far durable (fdatasync). @throws ERR_AUDIT_UNAVAILABLE */
  sync(): void
  /** Drops every line written after `mark` (the change they record was rolled back). @throws ERR_AUDIT_UNAVAILABLE */
  rewind(mark: number): void
}

/** Bytes read at a time while looking for the last newline. */
const TAIL_CHUNK = 4096

/** The length of the file up to and including its last newline (0 when it has none). */
function lastLineEnd(fd: number, size: number): number {
  const chunk = Buffer.alloc(TAIL_CHUNK)
  let end = size
  while (end > 0) {
    const start = Math.max(0, end - TAIL_CHUNK)
    const read = readSync(fd, chunk, 0, end - start, start)
    const at = chunk.subarray(0, read).lastIndexOf(0x0a)
    if (at >= 0) return start + at + 1
    end = start
  }
  return 0
}

function unavailable(what: string, cause: unknown): IdentityError {
  return new IdentityError('ERR_AUDIT_UNAVAILABLE', `the audit log ${what}`, { cause })
}

/**
 * An audit file opened for appending, written one whole line at a time: a line goes in one
 * `write(2)`; a write that fails or is cut short (a full disk) is undone by truncating the file back
 * to the end of the last complete line, and reported as ERR_AUDIT_UNAVAILABLE. So the file never
 * ends mid-line, and a record is either all there or not at all.
 *
 * Usable as a pino destination (`write(line)`). Single-threaded use only, as Node runs it: nothing
 * else may write to the descriptor.
 */
export class AuditFile implements AuditJournal {
  readonly #fd: number
  #size: number
  #closed = false
  /** How many bytes of an unfinished last line were cut when the file was opened (0 normally). */
  readonly cutBytes: number

  /**
   * Takes ownership of `fd` (opened with O_APPEND and read access). A file that ends mid-line (a
   * power loss during a write) is cut back to its last complete line first, so the next record
   * starts on a line of its own. @throws ERR_AUDIT_UNAVAILABLE when it cannot be read or repaired
   */
  constructor(fd: number) {
    this.#fd = fd
    try {
      const size = fstatSync(fd).size
      const whole = lastLineEnd(fd, size)
      if (whole < size) ftruncateSync(fd, whole)
      this.#size = whole
      this.cutBytes = size - whole
    } catch (err) {
      throw unavailable('cannot be read', err)
    }
  }

  /** Appends `line` (one record and its newline, text or UTF-8 bytes) whole, or not at all. @throws ERR_AUDIT_UNAVAILABLE */
  write(line: string | Uint8Array): boolean {
    if (this.#closed) throw unavailable('is closed', undefined)
    const bytes = typeof line === 'string' ? Buffer.from(line, 'utf8') : line
    let written = 0
    try {
      written = writeSync(this.#fd, bytes)
    } catch (err) {
      this.#undoTail()
      throw unavailable('could not be written', err)
    }
    if (written !== bytes.length) {
      this.#undoTail()
      throw unavailable(
        `could not be written (${written} of ${bytes.length} bytes: is the disk full?)`,
        undefined,
      )
    }
    this.#size += written
    return true
  }

  mark(): number {
    return this.#size
  }

  sync(): void {
    try {
      fdatasyncSync(this.#fd)
    } catch (err) {
      throw unavailable('could not be flushed to disk', err)
    }
  }

  rewind(mark: number): void {
    if (mark > this.#size) throw unavailable(`cannot rewind to ${mark}, past its end`, undefined)
    try {
      ftruncateSync(this.#fd, mark)
      this.#size = mark
      fdatasyncSync(this.#fd)
    } catch (err) {
      throw unavailable('could not take back lines of a change that did not commit', err)
    }
  }

  /** Releases the descriptor; later writes fail. */
  end(): void {
    if (this.#closed) return
    this.#closed = true
    closeSync(this.#fd)
  }

  /** A failed or short write may have left part of a line: cut the file back to the last whole line. */
  #undoTail(): void {
    try {
      ftruncateSync(this.#fd, this.#size)
    } catch {
      // Nothing more can be done here; the write is reported as failed all the same.
    }
  }
}
