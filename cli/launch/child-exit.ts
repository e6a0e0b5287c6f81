import { accessSync, constants, statSync } from 'node:fs'
import { delimiter, isAbsolute, join } from 'node:path'
import { IdentityError } from '../../lib/core/errors.js'

const SIGNAL_NUMBERS: Readonly<Record<string, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGTERM: 15,
}

/** Exit code of a child: its own, or 128 + the signal's number, as a shell reports it. */
export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code
  return 128 + (signal === null ? 0 : (SIGNAL_NUMBERS[signal] ?? 1))
}

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/**
 * The absolute path of `command` as `execvp` would find it (a name with a `/` is taken as a path).
 * @throws ERR_LAUNCH_COMMAND_NOT_FOUND when there is no such executable file
 */
export function resolveCommand(command: string, pathEnv: string, cwd: string): string {
  const candidates = command.includes('/')
    ? [isAbsolute(command) ? command : join(cwd, command)]
    : pathEnv
        .split(delimiter)
        .filter((d) => d !== '')
        .map((d) => join(d, command))
  const found = candidates.find(isExecutableFile)
  if (found === undefined)
    throw new IdentityError(
      'ERR_LAUNCH_COMMAND_NOT_FOUND',
      command.includes('/')
        ? `${command}: no such executable file`
        : `${command}: not found in PATH (${pathEnv})`,
    )
  return found
}
