import { type ErrorCode, IdentityError } from '../../lib/core/errors.js'

/**
 * The stable code a promise rejects with (tests assert on codes, never on messages); undefined when it
 * resolves. A rejection that is not an IdentityError is rethrown: it is a bug, not a refusal.
 */
export async function codeOf(promise: Promise<unknown>): Promise<ErrorCode | undefined> {
  try {
    await promise
  } catch (err) {
    if (err instanceof IdentityError) return err.code
    throw err
  }
  return undefined
}
