import { IdentityError } from './errors.js'

/**
 * A launch name (`tessera launch --as NAME`): a lower-case letter, then up to 23 of `a-z 0-9 _ -`.
 * It names the service account (`tessera-NAME`, within useradd's 32 characters) and the selector
 * `tessera:launch:NAME` that only the agent's delegated identity API produces.
 */
const LAUNCH_NAME = /^[a-z][a-z0-9_-]{0,23}$/

/** The selector type only the delegated identity path produces. */
export const LAUNCH_SELECTOR_TYPE = 'tessera'
/** The kind within {@link LAUNCH_SELECTOR_TYPE}: `tessera:launch:NAME`. */
export const LAUNCH_SELECTOR_KIND = 'launch'

/** What is wrong with a launch name, or undefined when it is well formed. */
export function findLaunchNameProblem(name: string): string | undefined {
  return LAUNCH_NAME.test(name)
    ? undefined
    : 'a launch name is a lower-case letter followed by up to 23 of a-z, 0-9, _ and -'
}

/**
 * Checks a launch name.
 * @throws ERR_LAUNCH_INVALID when it is malformed
 */
export function requireLaunchName(name: string): string {
  const problem = findLaunchNameProblem(name)
  if (problem !== undefined)
    throw new IdentityError('ERR_LAUNCH_INVALID', `launch name "${name}": ${problem}`)
  return name
}

/** What is wrong with the value of a `tessera:` selector (only `launch:NAME` exists), or undefined. */
export function findTesseraSelectorProblem(value: string): string | undefined {
  const prefix = `${LAUNCH_SELECTOR_KIND}:`
  if (!value.startsWith(prefix)) return 'tessera selector value must be launch:<name>'
  return findLaunchNameProblem(value.slice(prefix.length))
}
