import { type ChildProcess, spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import type { Logger } from 'pino'
import { IdentityError } from '../../lib/core/errors.js'
import type { HelperSettings } from './helper-config.js'

/** Tells the software using the files that they changed. */
export interface ReloadNotifier {
  /** Called after every write of the files (the first included). @throws ERR_REQUEST_INVALID when `cmd` cannot start */
  notify(): Promise<void>
  /** Resolves with the exit code of a managed `cmd` when it ends (never for the other modes). */
  readonly exited: Promise<number>
  /** Ends a managed `cmd` (SIGTERM). */
  stop(): Promise<void>
}

type NotifySettings = Pick<HelperSettings, 'cmd' | 'cmdArgs' | 'renewSignal' | 'pidFileName'>

/**
 * The notifier the settings ask for: `cmd` alone runs as a reload command after every write (its
 * exit awaited, a failure logged); `cmd` with `renew_signal` is started once after the first write
 * and sent the signal after every later one (spiffe-helper's way; when it exits, the helper exits
 * with its code); `pid_file_name` with `renew_signal` signals the pid in that file; nothing: no-op.
 */
export function createReloadNotifier(settings: NotifySettings, log: Logger): ReloadNotifier {
  const args = settings.cmdArgs?.split(/\s+/).filter((a) => a.length > 0) ?? []
  const { cmd, renewSignal, pidFileName } = settings
  if (cmd !== undefined && renewSignal !== undefined) return managedChild(cmd, args, renewSignal, log)
  if (cmd !== undefined) return reloadCommand(cmd, args, log)
  if (pidFileName !== undefined && renewSignal !== undefined)
    return pidFileSignal(pidFileName, renewSignal, log)
  return { notify: async () => {}, exited: new Promise(() => {}), stop: async () => {} }
}

function cannotStart(cmd: string, err: unknown): IdentityError {
  const code = (err as NodeJS.ErrnoException).code ?? 'unknown error'
  return new IdentityError('ERR_REQUEST_INVALID', `cmd: ${cmd} cannot be started (${code})`, { cause: err })
}

/** Spawns `cmd`; resolves once it has started. @throws ERR_REQUEST_INVALID (ENOENT, EACCES) */
function start(cmd: string, args: string[]): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: 'inherit' })
    child.once('spawn', () => resolve(child))
    child.once('error', (err) => reject(cannotStart(cmd, err)))
  })
}

function reloadCommand(cmd: string, args: string[], log: Logger): ReloadNotifier {
  return {
    async notify() {
      const child = await start(cmd, args)
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
        child.once('exit', (c, s) => resolve([c, s])),
      )
      if (code !== 0) log.warn({ cmd, code, signal }, 'The reload command failed.')
      else log.info({ cmd }, 'The reload command ran.')
    },
    exited: new Promise(() => {}),
    stop: async () => {},
  }
}

function managedChild(cmd: string, args: string[], signal: NodeJS.Signals, log: Logger): ReloadNotifier {
  let child: ChildProcess | undefined
  let resolveExit: (code: number) => void = () => {}
  const exited = new Promise<number>((resolve) => {
    resolveExit = resolve
  })
  return {
    async notify() {
      if (child === undefined) {
        child = await start(cmd, args)
        log.info({ cmd, pid: child.pid }, 'The command started.')
        child.once('exit', (code, sig) => {
          log.info({ cmd, code, signal: sig }, 'The command exited.')
          resolveExit(code ?? 1)
        })
        return
      }
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal)
        log.info({ cmd, pid: child.pid, signal }, 'The command was signalled to reload.')
      }
    },
    exited,
    async stop() {
      if (child !== undefined && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        await exited
      }
    },
  }
}

function pidFileSignal(path: string, signal: NodeJS.Signals, log: Logger): ReloadNotifier {
  return {
    async notify() {
      const text = await readFile(path, 'utf8').catch(() => undefined)
      const pid = text === undefined ? Number.NaN : Number(text.trim())
      if (!Number.isSafeInteger(pid) || pid <= 0) {
        log.warn({ pidFile: path }, 'The pid file is missing or holds no pid; no signal sent.')
        return
      }
      try {
        process.kill(pid, signal)
        log.info({ pid, signal }, 'The process was signalled to reload.')
      } catch (err) {
        log.warn(
          { pid, signal, code: (err as NodeJS.ErrnoException).code },
          'The process could not be signalled.',
        )
      }
    },
    exited: new Promise(() => {}),
    stop: async () => {},
  }
}
