import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { StringDecoder } from 'node:string_decoder'

/** How much is read from the file per call. */
const CHUNK_BYTES = 64 * 1024

/**
 * What a child appends to its log file, read line by line by `up`: the child writes the file
 * itself (so `up`'s own stdout closing cannot stop it), and `up` follows along.
 */
export class LogTail {
  readonly #fd: number
  readonly #buffer = Buffer.alloc(CHUNK_BYTES)
  readonly #decoder = new StringDecoder('utf8')
  #position: number
  #partial = ''
  #isClosed = false

  private constructor(fd: number) {
    this.#fd = fd
    this.#position = fstatSync(fd).size
  }

  /** Follows `path` from its current end: earlier runs' lines are not read. */
  static openAtEnd(path: string): LogTail {
    return new LogTail(openSync(path, 'r'))
  }

  /** The complete lines appended since the last call. */
  readLines(): string[] {
    if (this.#isClosed) return []
    let text = this.#partial
    for (;;) {
      const count = readSync(this.#fd, this.#buffer, 0, CHUNK_BYTES, this.#position)
      if (count === 0) break
      this.#position += count
      text += this.#decoder.write(this.#buffer.subarray(0, count))
    }
    const lines = text.split('\n')
    this.#partial = lines.pop() ?? ''
    return lines
  }

  /** The last lines, an unfinished one included; then the file is closed. */
  close(): string[] {
    const lines = this.readLines()
    const rest = this.#partial + this.#decoder.end()
    if (rest !== '') lines.push(rest)
    this.#partial = ''
    if (!this.#isClosed) closeSync(this.#fd)
    this.#isClosed = true
    return lines
  }
}
