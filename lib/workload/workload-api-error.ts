import { type StatusObject, status } from '@grpc/grpc-js'
import { type ErrorCode, IdentityError } from '../core/errors.js'
import { errorCodeOf, retryAfterMsOf, statusFor } from '../grpc/status.js'

/**
 * A Workload API call that failed with a gRPC status. The code is the one the agent attached (Tessera
 * agents send it in the `tessera-error-code` trailer), else one derived from the status:
 * PERMISSION_DENIED → ERR_NO_IDENTITY, INVALID_ARGUMENT → ERR_REQUEST_INVALID, UNIMPLEMENTED →
 * ERR_UNIMPLEMENTED, anything else → ERR_WORKLOAD_API_UNAVAILABLE. The gRPC error is the `cause`.
 * @example
 * try {
 *   await client.fetchX509Context()
 * } catch (err) {
 *   if (err instanceof WorkloadApiError && err.status === status.PERMISSION_DENIED) console.log('no identity')
 * }
 */
export class WorkloadApiError extends IdentityError {
  /** The gRPC status the call ended with (`OK` when the agent ended a stream without one). */
  readonly status: status
  /**
   * How long the agent asked the caller to wait before asking again (its `tessera-retry-after-ms`
   * trailer, clamped to 100 ms … 60 s): the throttle's wait, or a short one while an approval of
   * the caller is pending. Undefined when the agent gave none (a standard SPIFFE agent never does).
   */
  readonly retryAfterMs: number | undefined

  constructor(
    code: ErrorCode,
    message: string,
    grpcStatus: status,
    options?: { cause?: unknown; retryAfterMs?: number },
  ) {
    super(code, message, options)
    this.name = 'WorkloadApiError'
    this.status = grpcStatus
    this.retryAfterMs = options?.retryAfterMs
  }
}

const CODE_FOR_STATUS: Partial<Record<status, ErrorCode>> = {
  [status.PERMISSION_DENIED]: 'ERR_NO_IDENTITY',
  [status.INVALID_ARGUMENT]: 'ERR_REQUEST_INVALID',
  [status.UNIMPLEMENTED]: 'ERR_UNIMPLEMENTED',
}

function isErrorCode(code: string | undefined): code is ErrorCode {
  return code !== undefined && Object.hasOwn(statusFor, code)
}

/**
 * Turns what a Workload API call failed with into an {@link IdentityError}: a gRPC error becomes a
 * {@link WorkloadApiError}; an IdentityError is returned as is; anything else becomes
 * ERR_WORKLOAD_API_UNAVAILABLE with the error as `cause`.
 * @example
 * stream.on('error', (err) => onError(toWorkloadApiError(err, 'FetchX509SVID')))
 */
export function toWorkloadApiError(err: unknown, method: string): IdentityError {
  if (err instanceof IdentityError) return err
  const grpcCode = (err as { code?: unknown } | null)?.code
  if (typeof grpcCode === 'number' && grpcCode in status) {
    const sent = errorCodeOf(err)
    const code = isErrorCode(sent)
      ? sent
      : (CODE_FOR_STATUS[grpcCode as status] ?? 'ERR_WORKLOAD_API_UNAVAILABLE')
    const details = (err as { details?: unknown }).details
    const reason = typeof details === 'string' && details !== '' ? details : status[grpcCode]
    const retryAfterMs = retryAfterMsOf(err)
    return new WorkloadApiError(code, `${method} failed (${status[grpcCode]}): ${reason}`, grpcCode, {
      cause: err,
      ...(retryAfterMs !== undefined && { retryAfterMs }),
    })
  }
  const reason = err instanceof Error ? err.message : String(err)
  return new IdentityError('ERR_WORKLOAD_API_UNAVAILABLE', `${method} failed: ${reason}`, { cause: err })
}

/**
 * The error for a stream the agent ended without a status error; it is retried like UNAVAILABLE.
 * @example
 * stream.on('end', () => onFailure(streamEnded('FetchX509SVID')))
 */
export function streamEnded(method: string): WorkloadApiError {
  return new WorkloadApiError(
    'ERR_WORKLOAD_API_UNAVAILABLE',
    `${method}: the agent ended the stream`,
    status.OK,
  )
}

/**
 * The error a stream ended with, from its `error` event (if any) and its final `status`: a clean end
 * (OK) is {@link streamEnded}; anything else goes through {@link toWorkloadApiError}.
 * @example
 * stream.on('status', (end) => onFailure(streamFailure('FetchX509SVID', lastError, end)))
 */
export function streamFailure(method: string, error: unknown, end: StatusObject): IdentityError {
  if (end.code === status.OK) return streamEnded(method)
  return toWorkloadApiError(error ?? { code: end.code, details: end.details, metadata: end.metadata }, method)
}
