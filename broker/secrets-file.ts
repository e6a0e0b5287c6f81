import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs'
import { ConfigError } from '../lib/core/config-error.js'
import { IdentityError } from '../lib/core/errors.js'

/** The secrets the broker injects, by name. Never logged. */
export type Secrets = ReadonlyMap<string, string>

const NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/

/** `KEY=VALUE` lines; blank lines and `#` comments skipped. */
function parseLines(text: string, problems: string[]): Map<string, string> {
  const out = new Map<string, string>()
  text.split(/\r?\n/).forEach((line, index) => {
    const trimmed = line.trim()
    if (trimmed.length === 0 || trimmed.startsWith('#')) return
    const eq = trimmed.indexOf('=')
    const name = eq === -1 ? '' : trimmed.slice(0, eq).trim()
    // The line itself is never quoted in a problem: it holds a secret.
    if (!NAME.test(name)) problems.push(`line ${index + 1}: must be NAME=VALUE`)
    else out.set(name, trimmed.slice(eq + 1))
  })
  return out
}

function parseJson(text: string, problems: string[]): Map<string, string> {
  const out = new Map<string, string>()
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    problems.push('is not valid JSON')
    return out
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    problems.push('must be a JSON object of names to strings')
    return out
  }
  for (const [name, secret] of Object.entries(value)) {
    if (!NAME.test(name)) problems.push(`${JSON.stringify(name.slice(0, 60))}: is not a valid name`)
    else if (typeof secret !== 'string') problems.push(`${name}: must be a string`)
    else out.set(name, secret)
  }
  return out
}

/** Reads the file from an open descriptor, refusing it unless only its owner, this user, can read it. */
function readOwnFile(path: string, uid: number): string {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (err) {
    throw new ConfigError([`secrets ${path}: cannot be read (${(err as NodeJS.ErrnoException).code})`])
  }
  try {
    // The descriptor's own mode and owner: the file checked is the file read.
    const stat = fstatSync(fd)
    if (!stat.isFile()) throw new ConfigError([`secrets ${path}: is not a regular file`])
    const mode = stat.mode & 0o777
    if ((mode & 0o177) !== 0 || stat.uid !== uid)
      throw new IdentityError(
        'ERR_SECRETS_FILE_INSECURE',
        `secrets ${path}: must be mode 0600 or 0400 and owned by the broker's user (uid ${uid}); it is mode 0${mode.toString(8)}, owner uid ${stat.uid} (run: chmod 600 ${path})`,
      )
    return readFileSync(fd, 'utf8')
  } finally {
    closeSync(fd)
  }
}

/**
 * Reads a secrets file: a JSON object of names to strings, or `NAME=VALUE` lines. Refused unless
 * it is mode 0600 or 0400 and owned by `uid` (the broker's user). No secret value ever appears in
 * an error.
 * @throws ERR_SECRETS_FILE_INSECURE when others may read it; ConfigError (ERR_CONFIG_INVALID) with every problem
 * @example
 * const secrets = readSecretsFile('/etc/tessera/broker-secrets.env')
 * secrets.get('GITHUB_TOKEN')
 */
export function readSecretsFile(path: string, uid = process.getuid?.() ?? 0): Secrets {
  const text = readOwnFile(path, uid)
  const problems: string[] = []
  const secrets = text.trimStart().startsWith('{') ? parseJson(text, problems) : parseLines(text, problems)
  if (problems.length > 0) throw new ConfigError(problems.map((p) => `secrets ${path}: ${p}`))
  return secrets
}
