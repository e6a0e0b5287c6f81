import { closeSync, existsSync, openSync, readSync, renameSync, statSync } from 'node:fs'
import {
  CHECKPOINT_EVENT,
  type ChainState,
  chainedLine,
  chainFieldsOf,
  emptyChain,
  followChain,
  lineHash,
} from '../../lib/audit/audit-chain.js'
import { checkpointText } from '../../lib/audit/checkpoint.js'
import { leafHashOfPrefixed, type MerkleFrontier } from '../../lib/audit/merkle-tree.js'
import { signNote } from '../../lib/audit/signed-note.js'
import { type Clock, systemClock } from '../../lib/core/clock.js'
import { IdentityError } from '../../lib/core/errors.js'
import type { X509Svid } from '../../lib/core/x509/x509-svid.js'
import type { AuditJournal } from './audit-file.js'

/** When a writer signs a checkpoint: after so many lines, or so long after the first unsigned line. */
export interface CheckpointPolicy {
  /** Default 1000. */
  readonly everyLines?: number
  /** Default 60 s. */
  readonly everyMs?: number
}

export const DEFAULT_CHECKPOINT_LINES = 1000
export const DEFAULT_CHECKPOINT_MS = 60_000

/** A checkpoint a writer signed: its note and the signing SVID's chain (leaf first, DER). */
export interface SignedCheckpoint {
  readonly note: string
  readonly x5c: ReadonlyArray<Buffer>
}

/** Told of each checkpoint once it is written (to send it to the server: DESIGN §10). Must not throw. */
export type CheckpointListener = (checkpoint: SignedCheckpoint) => void

/** The X509-SVID whose key signs checkpoints now; undefined while the writer has none yet. */
export type CheckpointSigner = () => X509Svid | undefined

/** Where chained lines go: an {@link import('./audit-file.js').AuditFile} or standard output. */
export interface LineSink {
  write(line: Uint8Array): unknown
}

export interface ChainedWriterOptions {
  readonly checkpoints?: CheckpointPolicy
  readonly clock?: Clock
  /** Told when a checkpoint could not be signed or written (the record before it was written). */
  readonly onFailure?: (err: unknown) => void
}

interface Snapshot {
  readonly seq: number
  readonly prev: string
  readonly tree: MerkleFrontier
  readonly unsigned: number
}

/** Bytes read at a time while following an existing file's chain. */
const READ_CHUNK = 1 << 16
/** Marks remembered for a rewind: a change's lines are taken back before the next change starts. */
const MAX_MARKS = 8

/**
 * The lines of the first `size` bytes of `fd` (each without its newline), read in chunks. The file
 * ends with a newline ({@link import('./audit-file.js').AuditFile} cut any unfinished line).
 */
function* linesOf(fd: number, size: number): Generator<Buffer> {
  const chunk = Buffer.alloc(READ_CHUNK)
  let carry = Buffer.alloc(0)
  for (let pos = 0; pos < size; ) {
    const read = readSync(fd, chunk, 0, Math.min(READ_CHUNK, size - pos), pos)
    if (read === 0) break
    pos += read
    let data = Buffer.concat([carry, chunk.subarray(0, read)])
    for (let at = data.indexOf(0x0a); at >= 0; at = data.indexOf(0x0a)) {
      yield Buffer.from(data.subarray(0, at))
      data = data.subarray(at + 1)
    }
    carry = Buffer.from(data)
  }
}

/**
 * Moves a log written before audit lines were chained (not one line of it carries `seq` and `prev`)
 * aside to `<path>.unchained-<time>`, so the writer starts a new chain in its place instead of
 * refusing to start after an upgrade. A file with any chained line is left alone: if it does not
 * follow, that is for {@link followFileChain} to refuse. Nothing is deleted.
 * @returns the path it was moved to, or undefined when there was nothing to move
 */
export function moveAsideUnchained(path: string, nowMs: number): string | undefined {
  if (!existsSync(path)) return undefined
  const size = statSync(path).size
  if (size === 0) return undefined
  const fd = openSync(path, 'r')
  try {
    for (const line of linesOf(fd, size))
      if (chainFieldsOf(line.toString('utf8')) !== undefined) return undefined
  } finally {
    closeSync(fd)
  }
  const aside = `${path}.unchained-${new Date(nowMs).toISOString().replace(/[:.]/g, '-')}`
  renameSync(path, aside)
  return aside
}

/**
 * Follows the chain of an audit file opened for appending, so a writer continues it after a restart.
 * @throws ERR_AUDIT_CHAIN_BROKEN when a line does not follow (the file was edited, or predates the
 *   chain): the writer refuses it rather than extend a chain that cannot be verified
 */
export function followFileChain(fd: number, size: number, path: string): ChainState {
  try {
    return followChain(linesOf(fd, size))
  } catch (err) {
    if (!(err instanceof IdentityError)) throw err
    throw new IdentityError(
      'ERR_AUDIT_CHAIN_BROKEN',
      `audit log ${path}: ${err.message}; check it with tessera audit verify, then move it aside to start a new chain`,
      { cause: err },
    )
  }
}

/**
 * Puts every line written through it on the audit hash chain (see lib/audit/audit-chain.ts) and
 * appends a signed checkpoint line every N lines or T time, and when closed, once a signer is set.
 * A pino destination (`write(line)`), and the {@link AuditJournal} of the file below it, whose rewind
 * takes the chain back too. Single-threaded and synchronous, like the file.
 */
export class ChainedAuditWriter implements AuditJournal {
  readonly #sink: LineSink
  readonly #journal: AuditJournal | undefined
  readonly #clock: Clock
  readonly #everyLines: number
  readonly #onFailure: ((err: unknown) => void) | undefined
  readonly #marks = new Map<number, Snapshot>()
  readonly #timer: NodeJS.Timeout
  #seq: number
  #prev: string
  /** The tree of the lines so far, appended to in place (copied only for a mark). */
  #tree: MerkleFrontier
  /** Lines written since the last checkpoint (the checkpoint line itself not counted). */
  #unsigned = 0
  #signer: CheckpointSigner | undefined
  #listener: CheckpointListener | undefined

  constructor(
    sink: LineSink,
    journal: AuditJournal | undefined,
    state: ChainState = emptyChain(),
    options: ChainedWriterOptions = {},
  ) {
    this.#sink = sink
    this.#journal = journal
    this.#seq = state.seq
    this.#prev = state.prev
    this.#tree = state.tree.copy()
    this.#clock = options.clock ?? systemClock
    this.#onFailure = options.onFailure
    this.#everyLines = options.checkpoints?.everyLines ?? DEFAULT_CHECKPOINT_LINES
    const everyMs = options.checkpoints?.everyMs ?? DEFAULT_CHECKPOINT_MS
    this.#timer = setInterval(() => this.#checkpointQuietly(), everyMs)
    this.#timer.unref()
  }

  /** The key that signs checkpoints from now on (the writer's SVID, which rotates). */
  setSigner(signer: CheckpointSigner): void {
    this.#signer = signer
  }

  /** Who is told of each checkpoint written from now on (one listener; a new one replaces it). */
  setListener(listener: CheckpointListener): void {
    this.#listener = listener
  }

  /** How many lines the file holds. */
  get size(): number {
    return this.#seq
  }

  /** Appends one record (a JSON object and its newline) as the next chained line. @throws ERR_AUDIT_UNAVAILABLE */
  write(record: string): boolean {
    this.#append(record)
    this.#unsigned += 1
    if (this.#unsigned >= this.#everyLines) this.#checkpointQuietly()
    return true
  }

  /**
   * Signs and appends a checkpoint of every line so far, if there is an unsigned line and a signer.
   * @returns whether one was written
   * @throws ERR_AUDIT_UNAVAILABLE when it cannot be written
   */
  checkpoint(): boolean {
    const svid = this.#signer?.()
    if (this.#unsigned === 0 || svid === undefined) return false
    const origin = svid.id.toString()
    const rootHash = this.#tree.root()
    const text = checkpointText({ origin, size: this.#seq, rootHash })
    const note = signNote(text, origin, svid.privateKey)
    const x5c = svid.certificates.map((c) => c.der)
    const record = {
      time: new Date(this.#clock.nowMs()).toISOString(),
      event: CHECKPOINT_EVENT,
      outcome: 'allowed',
      actor: 'system:audit',
      caller: { kind: 'system', component: 'audit' },
      resource: origin,
      action: 'checkpoint',
      code: 'OK',
      size: this.#seq,
      root: rootHash.toString('base64'),
      note,
      x5c: x5c.map((der) => der.toString('base64')),
    }
    this.#append(JSON.stringify(record))
    this.#unsigned = 0
    try {
      this.#listener?.({ note, x5c })
    } catch (err) {
      this.#onFailure?.(err)
    }
    return true
  }

  mark(): number {
    const mark = this.#journal?.mark() ?? this.#seq
    this.#marks.delete(mark)
    const snapshot = {
      seq: this.#seq,
      prev: this.#prev,
      tree: this.#tree.copy(),
      unsigned: this.#unsigned,
    }
    this.#marks.set(mark, snapshot)
    if (this.#marks.size > MAX_MARKS) this.#marks.delete(this.#marks.keys().next().value as number)
    return mark
  }

  sync(): void {
    this.#journal?.sync()
  }

  rewind(mark: number): void {
    const snapshot = this.#marks.get(mark)
    if (snapshot === undefined)
      throw new IdentityError('ERR_AUDIT_UNAVAILABLE', `the audit log cannot rewind to ${mark}: no such mark`)
    this.#journal?.rewind(mark)
    this.#seq = snapshot.seq
    this.#prev = snapshot.prev
    this.#tree = snapshot.tree.copy()
    this.#unsigned = snapshot.unsigned
  }

  /** Signs a last checkpoint (when it can) and stops the timer; the sink is the caller's to close. */
  close(): void {
    clearInterval(this.#timer)
    this.#checkpointQuietly()
  }

  /** Writes `record` (a JSON object, with or without its newline) as the next line, and hashes it. */
  #append(record: string): void {
    const buffer = this.#leafOf(record)
    const end = buffer.length - 1
    this.#sink.write(buffer.subarray(1))
    this.#seq += 1
    this.#prev = lineHash(buffer.subarray(1, end))
    this.#tree.appendLeafHash(leafHashOfPrefixed(buffer.subarray(0, end)))
  }

  /**
   * One buffer: the leaf prefix 0x00, the line {@link chainedLine} makes of `record`, its newline;
   * the sink and both hashes take views of it. Built in place: the `seq`/`prev` head, then the
   * record's own bytes with its opening `{` turned into the `,` after the head, so the record is
   * encoded once and never copied into a longer string first.
   */
  #leafOf(record: string): Buffer {
    const ended = record.endsWith('\n')
    if (!record.startsWith('{') || record.startsWith('{}')) {
      const line = chainedLine(ended ? record.slice(0, -1) : record, this.#seq, this.#prev)
      return Buffer.from(`\0${line}\n`, 'utf8')
    }
    const head = `{"seq":${this.#seq},"prev":"${this.#prev}"`
    const size = 1 + head.length + Buffer.byteLength(record, 'utf8') + (ended ? 0 : 1)
    const buffer = Buffer.allocUnsafe(size)
    buffer[0] = 0x00
    buffer.write(head, 1, 'latin1')
    buffer.write(record, 1 + head.length, 'utf8')
    buffer[1 + head.length] = 0x2c
    buffer[size - 1] = 0x0a
    return buffer
  }

  #checkpointQuietly(): void {
    try {
      this.checkpoint()
    } catch (err) {
      this.#onFailure?.(err)
    }
  }
}
