import { closeSync, openSync, readSync } from 'node:fs'
import { join } from 'node:path'
import { type ErrorCode, IdentityError } from '../../lib/core/errors.js'
import { findForeignCode } from './foreign-code.js'
import { peercredAddon } from './peercred.js'
import type { ProcessFacts } from './process-facts.js'

/** The addon functions of native/peer-binding.cc. */
interface BindingAddon {
  peerSocketInode(fd: number): number
  findSocketFd(pid: number, ino: number, hintFd: number): { fd: number; cloexec: boolean } | null
  checkPeer(
    statusFd: number,
    pid: number,
    exeDev: number,
    exeIno: number,
    fd: number,
    ino: number,
    environFd: number,
  ): number
  setPassCred(fd: number): void
}

const addon = () => peercredAddon() as BindingAddon

/** Why binary-pinning selectors (`unix:sha256`, `unix:path`) are withheld from a connection. */
export interface PinBlock {
  readonly code: Extract<ErrorCode, 'ERR_PEER_PRELOADED' | 'ERR_PEER_EXECUTED'>
  readonly reason: string
}

/** What {@link ConnectionBinding.bind} needs besides the connection. */
export interface BindingOptions {
  /** The `/proc` root; default `/proc`. */
  readonly procRoot?: string
  /** Called once, with the refusal, when the connection breaks its binding (to audit and close it). */
  readonly onViolation: (err: IdentityError) => void
}

/** checkPeer's answers (native/peer-binding.cc) → the refusal they mean; 1 is this module's own. */
const VIOLATIONS: Record<number, [ErrorCode, string]> = {
  1: ['ERR_ATTESTATION_FAILED', 'the connecting process exited'],
  2: ['ERR_PEER_EXECUTED', 'the connecting process executed another binary since it connected'],
  3: ['ERR_PEER_TRACED', 'the connecting process is being traced'],
  4: ['ERR_PEER_SOCKET_HANDED_ON', 'the connecting process no longer holds its socket'],
}

const bindings = new WeakMap<ProcessFacts, ConnectionBinding>()

/**
 * Sets SO_PASSCRED on a listening Unix socket: every socket it accepts inherits it, so the kernel
 * stamps each message with its sender from the first byte (see peer-relay.ts).
 * @throws ERR_PEER_UNAUTHORIZED when the addon is missing or the call fails.
 */
export function setPassCredentials(listenFd: number): void {
  try {
    addon().setPassCred(listenFd)
  } catch (err) {
    throw new IdentityError('ERR_PEER_UNAUTHORIZED', 'SO_PASSCRED failed', { cause: err })
  }
}

/**
 * A Workload API connection bound to the one process that made it (DESIGN §6.1). At accept: the
 * peer end's socket inode and the descriptor through which the connector holds it, and whether
 * binary pins must be withheld (preloaded or foreign code, or a socket only held in descriptors
 * that survive exec). Before every answer ({@link ConnectionBinding.verify}): the image is still the
 * same (dev, inode), nobody traces the process, and it still holds the socket.
 */
export class ConnectionBinding {
  readonly #facts: ProcessFacts
  readonly #peerIno: number
  readonly #needsCloexec: boolean
  readonly #onViolation: (err: IdentityError) => void
  #fd: number
  /** The process's `/proc/<pid>/status`, open for the connection's life (TracerPid by pread). */
  #statusFd: number | undefined
  /**
   * The process's `/proc/<pid>/environ`, opened at accept: it reads the memory of that image, and
   * nothing once an exec replaced it (any exec, even of the same file). -1 for an empty environment.
   */
  #environFd = -1
  #violation: IdentityError | undefined
  /** Set when `unix:sha256` / `unix:path` must not be produced for this connection. */
  readonly pinBlock: PinBlock | undefined

  private constructor(
    facts: ProcessFacts,
    held: { peerIno: number; fd: number; cloexec: boolean; statusFd: number },
    extra: { pinBlock: PinBlock | undefined; onViolation: (err: IdentityError) => void },
  ) {
    this.#facts = facts
    this.#statusFd = held.statusFd
    this.#peerIno = held.peerIno
    this.#fd = held.fd
    this.#needsCloexec = held.cloexec
    this.pinBlock = extra.pinBlock
    this.#onViolation = extra.onViolation
  }

  /**
   * Binds an accepted connection (`fd`, ours) to its attested process.
   * @throws ERR_PEER_SOCKET_HANDED_ON, ERR_PEER_EXECUTED, ERR_PEER_TRACED when it is already broken;
   *   ERR_PEER_UNAUTHORIZED when the peer cannot be inspected.
   */
  static async bind(fd: number, facts: ProcessFacts, options: BindingOptions): Promise<ConnectionBinding> {
    const a = addon()
    let peerIno: number
    let held: { fd: number; cloexec: boolean } | null
    try {
      peerIno = a.peerSocketInode(fd)
      held = peerIno === 0 ? null : a.findSocketFd(facts.pid, peerIno, -1)
    } catch (err) {
      throw new IdentityError('ERR_PEER_UNAUTHORIZED', 'the connecting process cannot be inspected', {
        cause: err,
      })
    }
    if (held === null) throw refusal(4)
    const procDir = join(options.procRoot ?? '/proc', String(facts.pid))
    const foreign = await findForeignCode(procDir, facts.exe)
    const { statusFd, environFd } = openProcFiles(procDir)
    const pinBlock: PinBlock | undefined = foreign
      ? { code: 'ERR_PEER_PRELOADED', reason: foreign }
      : held.cloexec
        ? undefined
        : { code: 'ERR_PEER_EXECUTED', reason: 'it holds its socket only in descriptors kept across exec' }
    const binding = new ConnectionBinding(
      facts,
      { peerIno, statusFd, ...held },
      { pinBlock, onViolation: options.onViolation },
    )
    binding.#environFd = environFd
    const code = binding.#check()
    // Only a process still alive now proves the /proc reads above were its own.
    const err = !facts.isAlive() ? refusal(1) : code !== 0 ? refusal(code) : undefined
    if (err) {
      binding.close()
      throw err
    }
    bindings.set(facts, binding)
    return binding
  }

  /** The refusal this connection earned, if any; every later call gets it too. */
  get violation(): IdentityError | undefined {
    return this.#violation
  }

  /**
   * Checks the connection is still bound to its process; the first failure is reported to
   * `onViolation` once and then sticks.
   * @throws ERR_PEER_EXECUTED, ERR_PEER_TRACED, ERR_PEER_SOCKET_HANDED_ON (PERMISSION_DENIED);
   *   ERR_ATTESTATION_FAILED when the process exited.
   */
  verify(): void {
    if (this.#violation) throw this.#violation
    const code = this.#check()
    const isAlive = this.#facts.isAlive() // after the reads: they were this process's
    if (code === 0 && isAlive) return
    this.refuse(refusal(isAlive ? code : 1))
    throw this.#violation
  }

  /** Marks the connection refused (e.g. bytes from another process) and reports it once. */
  refuse(err: IdentityError): void {
    if (this.#violation) return
    this.#violation = err
    this.#onViolation(err)
  }

  /** Releases the status fd; the binding then refuses every check. Idempotent. */
  close(): void {
    if (this.#statusFd === undefined) return
    closeSync(this.#statusFd)
    this.#statusFd = undefined
    if (this.#environFd >= 0) closeSync(this.#environFd)
    this.#environFd = -1
  }

  #check(): number {
    const { pid, exeId } = this.#facts
    if (this.#statusFd === undefined) return 1
    const a = addon()
    const code = a.checkPeer(
      this.#statusFd,
      pid,
      exeId.dev,
      exeId.ino,
      this.#fd,
      this.#peerIno,
      this.#environFd,
    )
    if (code !== 4) return code
    // The descriptor moved (dup2, close): find it again; it must still be one exec would close.
    const held = a.findSocketFd(pid, this.#peerIno, -1)
    if (held === null || (this.#needsCloexec && !held.cloexec)) return 4
    this.#fd = held.fd
    return 0
  }
}

/**
 * Opens the process's `status` and `environ` for the connection's life; the environ fd is kept only
 * if it reads something now (see `#environFd`).
 * @throws ERR_PEER_UNAUTHORIZED when they cannot be opened
 */
function openProcFiles(procDir: string): { statusFd: number; environFd: number } {
  let statusFd: number | undefined
  try {
    statusFd = openSync(join(procDir, 'status'), 'r')
    const environFd = openSync(join(procDir, 'environ'), 'r')
    if (readSync(environFd, Buffer.alloc(1), 0, 1, 0) === 1) return { statusFd, environFd }
    closeSync(environFd)
    return { statusFd, environFd: -1 }
  } catch (err) {
    if (statusFd !== undefined) closeSync(statusFd)
    throw new IdentityError('ERR_PEER_UNAUTHORIZED', 'the connecting process cannot be inspected', {
      cause: err,
    })
  }
}

function refusal(code: number): IdentityError {
  const [errorCode, message] = VIOLATIONS[code] ?? ['ERR_PEER_UNAUTHORIZED', 'peer check failed']
  return new IdentityError(errorCode, message)
}

/** The binding of a connection's facts, or undefined when it has none (checks disabled). */
export function bindingOf(facts: ProcessFacts | undefined): ConnectionBinding | undefined {
  return facts === undefined ? undefined : bindings.get(facts)
}
