import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { promisify } from 'node:util'
import { IdentityError } from '../../lib/core/errors.js'

const run = promisify(execFile)

/** A launch's service account. */
export interface ServiceAccount {
  readonly user: string
  readonly uid: number
  readonly gid: number
  /** True when this launch created it. */
  readonly created: boolean
}

/** The service account of launch `name`. */
export function serviceAccountName(name: string): string {
  return `tessera-${name}`
}

/** The shell that refuses logins, where this system keeps it. */
export function noLoginShell(): string {
  return ['/usr/sbin/nologin', '/sbin/nologin'].find((p) => existsSync(p)) ?? '/usr/sbin/nologin'
}

/** The exact command that creates the account (run by the launcher, or printed for an admin to run). */
export function useraddCommand(user: string): string[] {
  return [
    'useradd',
    '--system',
    '--shell',
    noLoginShell(),
    '--no-create-home',
    '--home-dir',
    '/nonexistent',
    '--user-group',
    user,
  ]
}

async function lookup(user: string): Promise<{ uid: number; gid: number } | undefined> {
  try {
    const { stdout } = await run('getent', ['passwd', user])
    const fields = stdout.trim().split(':')
    const uid = Number(fields[2])
    const gid = Number(fields[3])
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined
  } catch {
    return undefined // getent exits 2 when the user does not exist
  }
}

/**
 * The system user `tessera-NAME`, created on first use (no login shell, no home) and reused after.
 * @throws ERR_LAUNCH_PRIVILEGE when it does not exist and this process may not create it (the
 *   message holds the command to run as root)
 */
export async function ensureServiceAccount(name: string, isRoot: boolean): Promise<ServiceAccount> {
  const user = serviceAccountName(name)
  const found = await lookup(user)
  if (found) return { user, ...found, created: false }
  const command = useraddCommand(user)
  if (!isRoot)
    throw new IdentityError(
      'ERR_LAUNCH_PRIVILEGE',
      `creating the service account ${user} needs root: run \`sudo ${command.join(' ')}\`, then launch again as root`,
    )
  try {
    await run(command[0] as string, command.slice(1))
  } catch (err) {
    // Another launch may have created it meanwhile.
    const again = await lookup(user)
    if (again) return { user, ...again, created: false }
    throw new IdentityError('ERR_LAUNCH_PRIVILEGE', `\`${command.join(' ')}\` failed`, { cause: err })
  }
  const made = await lookup(user)
  if (!made) throw new IdentityError('ERR_LAUNCH_PRIVILEGE', `${user} was created but cannot be looked up`)
  return { user, ...made, created: true }
}
