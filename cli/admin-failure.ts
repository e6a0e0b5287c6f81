import { statSync } from 'node:fs'
import { type ServiceError, status } from '@grpc/grpc-js'
import { type ErrorCode, IdentityError } from '../lib/core/errors.js'
import { errorCodeOf } from '../lib/grpc/status.js'

/** Where a failed admin call went: the socket path (local), or only how to name the target. */
export interface AdminTarget {
  /** The target as error messages name it. */
  readonly socket: string
  /** The Unix socket's path when the call went to the local admin socket. */
  readonly socketPath?: string
}

/** Codes for gRPC statuses a server sent without a Tessera code (a proxy, another server). */
const CODE_FOR_STATUS: Partial<Record<status, ErrorCode>> = {
  [status.PERMISSION_DENIED]: 'ERR_PEER_UNAUTHORIZED',
  [status.UNAUTHENTICATED]: 'ERR_PEER_UNAUTHORIZED',
  [status.INVALID_ARGUMENT]: 'ERR_REQUEST_INVALID',
  [status.UNIMPLEMENTED]: 'ERR_UNIMPLEMENTED',
  [status.RESOURCE_EXHAUSTED]: 'ERR_REQUEST_TOO_LARGE',
}

/** grpc-js's connection-failure text without its empty `Resolution note:` tail. */
function transportDetails(details: string): string {
  return details.replace(/\.?\s*Resolution note:\s*$/, '').trim()
}

/**
 * The coded error a failed admin call is shown as. A failure the server coded keeps its code; a
 * connection that could not be made says why as far as the CLI can tell: no socket, a socket this
 * uid may not open, a server that dropped a non-admin uid at accept, or no server listening.
 * @param deadlineMs the call's deadline, named when it passed
 */
export function explainAdminFailure(err: ServiceError, target: AdminTarget, deadlineMs: number): unknown {
  if (errorCodeOf(err) !== undefined) return err
  if (err.code === status.UNAVAILABLE) return explainUnreachable(err.details, target)
  if (err.code === status.DEADLINE_EXCEEDED)
    return new IdentityError(
      'ERR_ADMIN_API_UNAVAILABLE',
      `the admin API at ${target.socket} did not answer within ${deadlineMs / 1000} s`,
    )
  const code = CODE_FOR_STATUS[err.code] ?? 'ERR_INTERNAL'
  return new IdentityError(
    code,
    `the admin API at ${target.socket} failed the call (${status[err.code] ?? err.code}): ${err.details}`,
  )
}

function explainUnreachable(details: string, target: AdminTarget): IdentityError {
  const why = transportDetails(details)
  if (target.socketPath === undefined)
    return new IdentityError(
      'ERR_ADMIN_API_UNAVAILABLE',
      `cannot reach the admin API at ${target.socket}: ${why}`,
    )
  const path = target.socketPath
  const uid = process.getuid?.()
  if (/\bE(ACCES|PERM)\b/.test(why))
    return new IdentityError(
      'ERR_PEER_UNAUTHORIZED',
      `permission denied on the admin socket ${path}: only its owner${ownerOf(path)} and root may open it (uid ${uid ?? '?'} may not); run as them, or reach the server over mTLS with --server-address as an admin entry's SVID`,
    )
  if (/\bENOENT\b/.test(why))
    return new IdentityError(
      'ERR_ADMIN_API_UNAVAILABLE',
      `no admin socket at ${path}: the server is not running there (give its socket with --socket or TESSERA_ADMIN_SOCKET)`,
    )
  if (/\bECONNREFUSED\b/.test(why))
    return new IdentityError(
      'ERR_ADMIN_API_UNAVAILABLE',
      `no server listens on ${path} (the socket file is left from a server that stopped)`,
    )
  const owner = socketOwner(path)
  if (owner !== undefined && uid !== undefined && owner !== uid && uid !== 0)
    return new IdentityError(
      'ERR_PEER_UNAUTHORIZED',
      `the server at ${path} (uid ${owner}) dropped the connection: uid ${uid} is not one of its admins (the server must be started with --admin-uid ${uid})`,
    )
  return new IdentityError('ERR_ADMIN_API_UNAVAILABLE', `cannot reach the admin API at ${path}: ${why}`)
}

function socketOwner(path: string): number | undefined {
  try {
    return statSync(path).uid
  } catch {
    return undefined
  }
}

function ownerOf(path: string): string {
  const owner = socketOwner(path)
  return owner === undefined ? '' : ` (uid ${owner})`
}
