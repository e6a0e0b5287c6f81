import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { IdentityError } from '../../lib/core/errors.js'

/** A process `up` started whose pid file it wrote. */
export interface PidFileSpec {
  /** `server` or `agent`: the file is `<dataDir>/<name>.pid`. */
  readonly name: string
  /** Only a process whose command line holds this argument is the one the file names. */
  readonly marker: string
}

/** `<dataDir>/<name>.pid`. */
export function pidFilePath(dataDir: string, name: string): string {
  return join(dataDir, `${name}.pid`)
}

/** Records `pid` (one line, as `kill $(cat …)` wants it). */
export function writePidFile(path: string, pid: number): void {
  writeFileSync(path, `${pid}\n`, { mode: 0o644 })
}

/** Removes a pid file; never fails. */
export function removePidFile(path: string): void {
  rmSync(path, { force: true })
}

/** The arguments of a live process; undefined when there is none (or only a zombie) with that pid. */
function readCommandLine(pid: number): string[] | undefined {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
    return args.length > 1 ? args : undefined
  } catch {
    return undefined
  }
}

/** The parent pid of a live process, from /proc/<pid>/stat (after the command's closing parenthesis). */
function readParentPid(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return Number(fields[1])
  } catch {
    return undefined
  }
}

/** The live process `path` names, if it is still the one `up` started; else the file is removed. */
function findLiveProcess(path: string, marker: string): number | undefined {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
  const pid = Number(text.trim())
  const args = Number.isSafeInteger(pid) && pid > 0 ? readCommandLine(pid) : undefined
  if (args?.includes(marker)) return pid
  removePidFile(path)
  return undefined
}

/**
 * Checks the pid files an earlier `up` on this data dir left: a file naming a process that is gone
 * (or has become another program) is removed; a live one is refused with its pid and its parent's.
 * @throws ERR_ALREADY_RUNNING naming the pid to stop
 */
export function refuseLiveLeftovers(dataDir: string, specs: ReadonlyArray<PidFileSpec>): void {
  for (const spec of specs) {
    const pid = findLiveProcess(pidFilePath(dataDir, spec.name), spec.marker)
    if (pid === undefined) continue
    const parent = readParentPid(pid)
    const message =
      parent !== undefined && parent > 1
        ? `a tessera ${spec.name} is already running on ${dataDir}: pid ${pid}, started by pid ${parent} (another \`tessera up\`?); stop that one (Ctrl-C in its terminal, or kill ${parent}) and start again`
        : `a tessera ${spec.name} left over from an earlier \`tessera up\` is still running on ${dataDir}: pid ${pid}; stop it (kill ${pid}) and start again`
    throw new IdentityError('ERR_ALREADY_RUNNING', message)
  }
}
