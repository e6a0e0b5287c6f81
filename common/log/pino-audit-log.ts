import { closeSync, fchmodSync, mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import { type DestinationStream, pino } from 'pino'
import { type Clock, systemClock } from '../../lib/core/clock.js'
import { IdentityError } from '../../lib/core/errors.js'
import {
  ChainedAuditWriter,
  type CheckpointListener,
  type CheckpointPolicy,
  type CheckpointSigner,
  followFileChain,
  moveAsideUnchained,
} from './audit-chain-writer.js'
import { AuditFile, type AuditJournal } from './audit-file.js'
import { type AuditRecord, AuditRecorder } from './audit-log.js'

/** Audit files hold who got which identity: readable by the service's user only. */
export const AUDIT_FILE_MODE = 0o600
const AUDIT_DIR_MODE = 0o700

/**
 * One audit line: `{"time":"<ISO>", …the record's fields in order…}` and its newline, byte for byte
 * what a pino logger with no level, no base and this timestamp wrote for it (pino's own layer was
 * about a quarter of an audit line's CPU in the agent's profile, docs/performance.md, for nothing an
 * audit record needs: records hold no `err`, no circular value, no bigint). Fields whose value is undefined are left out, as pino left them out.
 */
export function auditLine(record: AuditRecord): string {
  const fields = JSON.stringify(record)
  const time = `{"time":"${new Date().toISOString()}"`
  return fields === '{}' ? `${time}}\n` : `${time},${fields.slice(1)}\n`
}

/**
 * The audit log as JSON lines ({@link auditLine}): ISO `time`, no `level` (nothing is
 * ever filtered by level). No pino `redact`: {@link AuditRecorder} censors every field named like a
 * secret while it builds the record, at any depth, which covers all the process log's redact paths
 * cover for those names; the 33 wildcard paths cost ~12 µs a record, more than the rest together.
 */
export class PinoAuditLog extends AuditRecorder {
  readonly #destination: DestinationStream
  readonly #close: () => void
  #journal: AuditJournal | undefined
  #chain: ChainedAuditWriter | undefined
  #onFailure: ((err: unknown) => void) | undefined
  /** Written to standard output: a stream that starts over each run, not a file whose cut could show. */
  #isStream = false

  /** Writes to `destination`; `close` releases it (the file's descriptor; nothing for stdout). */
  constructor(destination: DestinationStream, close: () => void = () => {}) {
    super()
    this.#close = close
    this.#destination = destination
  }

  /**
   * Opens the audit log at `path` (`-` is standard output): appends to the file, creating it and
   * its directory (0700) as needed, and sets the file's mode to 0600 even if it existed. Each
   * record is written synchronously and whole ({@link AuditFile}: a failed or short write is cut
   * back, so the file never ends mid-line), so none is lost when the process dies; a write that
   * fails throws ERR_AUDIT_UNAVAILABLE to the caller, after `options.onFailure` was told.
   *
   * Every line is put on the file's hash chain (`seq`, `prev`: lib/audit/audit-chain.ts), continued
   * from the file's last line after a restart, and signed checkpoints are appended every
   * `options.checkpoints` lines or milliseconds and at {@link close}, once {@link setCheckpointSigner}
   * gave the writer its SVID. Standard output gets a chain too, started afresh each time.
   * @throws ERR_CONFIG_INVALID when the file cannot be opened
   * @throws ERR_AUDIT_CHAIN_BROKEN when the file's lines do not form a chain (edited, or older than it)
   */
  static open<T extends PinoAuditLog>(
    this: new (
      destination: DestinationStream,
      close?: () => void,
    ) => T,
    path: string,
    options: {
      readonly onFailure?: (err: unknown) => void
      /** Told how many bytes of an unfinished last line (a power loss mid-write) were cut at open. */
      readonly onRepair?: (cutBytes: number) => void
      /** Told where a log from before the chain (no chained line at all) was moved to. */
      readonly onMovedAside?: (aside: string) => void
      /** Names the file moved aside; default the system clock. */
      readonly clock?: Clock
      readonly checkpoints?: CheckpointPolicy
    } = {},
  ): T {
    const chainOptions = {
      ...(options.checkpoints !== undefined && { checkpoints: options.checkpoints }),
      ...(options.onFailure !== undefined && { onFailure: options.onFailure }),
    }
    if (path === '-') {
      const stdout = pino.destination({ dest: 1, sync: true })
      const chain = new ChainedAuditWriter(
        { write: (line) => stdout.write(Buffer.from(line).toString('utf8')) },
        undefined,
        undefined,
        chainOptions,
      )
      const out = new this(chain as unknown as DestinationStream, () => chain.close())
      out.#chain = chain
      out.#onFailure = options.onFailure
      out.#isStream = true
      return out
    }
    let fd: number
    try {
      mkdirSync(dirname(path), { recursive: true, mode: AUDIT_DIR_MODE })
      const aside = moveAsideUnchained(path, (options.clock ?? systemClock).nowMs())
      if (aside !== undefined) options.onMovedAside?.(aside)
      fd = openSync(path, 'a+', AUDIT_FILE_MODE)
    } catch (err) {
      throw new IdentityError('ERR_CONFIG_INVALID', `audit log ${path} cannot be opened`, { cause: err })
    }
    try {
      fchmodSync(fd, AUDIT_FILE_MODE)
    } catch (err) {
      closeSync(fd)
      throw new IdentityError('ERR_CONFIG_INVALID', `audit log ${path} cannot be made private`, {
        cause: err,
      })
    }
    let file: AuditFile | undefined
    let chain: ChainedAuditWriter
    try {
      file = new AuditFile(fd)
      const state = followFileChain(fd, file.mark(), path)
      chain = new ChainedAuditWriter(file, file, state, chainOptions)
    } catch (err) {
      if (file === undefined) closeSync(fd)
      else file.end()
      throw err
    }
    if (file.cutBytes > 0) options.onRepair?.(file.cutBytes)
    const opened = file
    const log = new this(chain as unknown as DestinationStream, () => {
      try {
        chain.close()
      } finally {
        opened.end()
      }
    })
    log.#journal = chain
    log.#chain = chain
    log.#onFailure = options.onFailure
    return log
  }

  /** The file's {@link AuditJournal}; undefined when writing to standard output (nothing to sync or take back). */
  get journal(): AuditJournal | undefined {
    return this.#journal
  }

  /** Gives the writer the SVID whose key signs its checkpoints (checked each time one is signed). */
  setCheckpointSigner(signer: CheckpointSigner): void {
    this.#chain?.setSigner(signer)
  }

  /**
   * Tells `listener` of each checkpoint written from now on (agents and gateways send them to the
   * server: DESIGN §10). It runs inside the audit write: it must return at once and never throw.
   * Not for a log on standard output: its chain starts over each run, so the server would take every
   * restart for a cut log; nothing is sent.
   */
  onCheckpoint(listener: CheckpointListener): void {
    if (!this.#isStream) this.#chain?.setListener(listener)
  }

  /** Signs a checkpoint of the lines so far now, when there is any unsigned line and a signer. */
  checkpoint(): boolean {
    return this.#chain?.checkpoint() ?? false
  }

  /** @throws ERR_AUDIT_UNAVAILABLE when the record cannot be written whole */
  protected write(record: AuditRecord): void {
    try {
      this.#destination.write(auditLine(record))
    } catch (err) {
      this.#onFailure?.(err)
      if (err instanceof IdentityError) throw err
      throw new IdentityError('ERR_AUDIT_UNAVAILABLE', 'the audit log could not be written', { cause: err })
    }
  }

  /** Signs a last checkpoint (when it can) and releases the destination; nothing may be written afterwards. */
  close(): void {
    this.#close()
  }
}
