import { Metadata, type ServiceError, status } from '@grpc/grpc-js'
import { type ErrorCode, IdentityError } from '../core/errors.js'

/**
 * The one table that maps Tessera's error codes to gRPC statuses. Its type makes the compiler
 * report any code that is added to `ErrorCode` and left unmapped.
 */
export const statusFor: Record<ErrorCode, status> = {
  ERR_ID_INVALID: status.INVALID_ARGUMENT,
  ERR_TRUST_DOMAIN_INVALID: status.INVALID_ARGUMENT,
  ERR_SELECTOR_INVALID: status.INVALID_ARGUMENT,
  ERR_DNS_NAME_INVALID: status.INVALID_ARGUMENT,
  ERR_DER_MALFORMED: status.INVALID_ARGUMENT,
  ERR_PEM_MALFORMED: status.INVALID_ARGUMENT,
  ERR_CERT_MALFORMED: status.INVALID_ARGUMENT,
  ERR_KEY_MALFORMED: status.INVALID_ARGUMENT,
  ERR_KEY_MISMATCH: status.INVALID_ARGUMENT,
  ERR_CSR_MALFORMED: status.INVALID_ARGUMENT,
  ERR_CSR_SIGNATURE_INVALID: status.INVALID_ARGUMENT,
  ERR_X509_SVID_INVALID: status.INVALID_ARGUMENT,
  ERR_X509_SVID_UNTRUSTED: status.PERMISSION_DENIED,
  ERR_X509_SVID_EXPIRED: status.PERMISSION_DENIED,
  ERR_JWT_MALFORMED: status.INVALID_ARGUMENT,
  ERR_JWT_ALG_UNSUPPORTED: status.INVALID_ARGUMENT,
  ERR_JWT_INVALID: status.INVALID_ARGUMENT,
  ERR_JWT_KEY_NOT_FOUND: status.INVALID_ARGUMENT,
  ERR_JWT_SIGNATURE_INVALID: status.INVALID_ARGUMENT,
  ERR_JWT_EXPIRED: status.INVALID_ARGUMENT,
  ERR_JWT_NOT_YET_VALID: status.INVALID_ARGUMENT,
  ERR_JWT_AUDIENCE_MISMATCH: status.INVALID_ARGUMENT,
  ERR_WIT_INVALID: status.INVALID_ARGUMENT,
  ERR_PROOF_MISSING: status.UNAUTHENTICATED,
  ERR_PROOF_INVALID: status.UNAUTHENTICATED,
  ERR_PROOF_AUDIENCE_MISMATCH: status.UNAUTHENTICATED,
  ERR_PROOF_EXPIRED: status.UNAUTHENTICATED,
  ERR_PROOF_BINDING_MISMATCH: status.UNAUTHENTICATED,
  ERR_PROOF_REPLAYED: status.UNAUTHENTICATED,
  ERR_TASK_TOKEN_INVALID: status.INVALID_ARGUMENT,
  ERR_TASK_SCOPE_WIDENED: status.PERMISSION_DENIED,
  ERR_TASK_SCOPE_MISSING: status.PERMISSION_DENIED,
  ERR_TASK_NOT_FOUND: status.NOT_FOUND,
  ERR_TASK_ENDED: status.FAILED_PRECONDITION,
  ERR_TASK_TOKEN_MISSING: status.PERMISSION_DENIED,
  ERR_TASK_SUBJECT_MISMATCH: status.PERMISSION_DENIED,
  ERR_TASK_DENIED: status.PERMISSION_DENIED,
  ERR_APPROVAL_TIMEOUT: status.DEADLINE_EXCEEDED,
  ERR_BUNDLE_MALFORMED: status.INVALID_ARGUMENT,
  ERR_BUNDLE_NOT_FOUND: status.NOT_FOUND,
  ERR_TTL_INVALID: status.INVALID_ARGUMENT,
  ERR_CA_NOT_READY: status.UNAVAILABLE,
  ERR_CA_EXPIRED: status.UNAVAILABLE,
  ERR_KEY_STORE_CORRUPT: status.INTERNAL,
  ERR_KEY_STORE_IO: status.UNAVAILABLE,
  ERR_ENTRY_INVALID: status.INVALID_ARGUMENT,
  ERR_ENTRY_NOT_FOUND: status.NOT_FOUND,
  ERR_ENTRY_EXISTS: status.ALREADY_EXISTS,
  ERR_ENTRY_REVISION_CONFLICT: status.FAILED_PRECONDITION,
  ERR_PAGE_TOKEN_INVALID: status.INVALID_ARGUMENT,
  ERR_JOIN_TOKEN_INVALID: status.PERMISSION_DENIED,
  ERR_AGENT_NOT_FOUND: status.NOT_FOUND,
  ERR_AGENT_EXISTS: status.ALREADY_EXISTS,
  ERR_AGENT_BANNED: status.PERMISSION_DENIED,
  ERR_AGENT_UNAUTHORIZED: status.PERMISSION_DENIED,
  ERR_DATASTORE_IO: status.UNAVAILABLE,
  ERR_DATASTORE_SCHEMA: status.FAILED_PRECONDITION,
  ERR_CONFIG_INVALID: status.INVALID_ARGUMENT,
  ERR_ATTESTATION_FAILED: status.UNAVAILABLE,
  ERR_PEER_UNAUTHORIZED: status.PERMISSION_DENIED,
  ERR_NO_IDENTITY: status.PERMISSION_DENIED,
  ERR_UNIMPLEMENTED: status.UNIMPLEMENTED,
  ERR_REQUEST_INVALID: status.INVALID_ARGUMENT,
  ERR_REQUEST_TOO_LARGE: status.RESOURCE_EXHAUSTED,
  ERR_ENDPOINT_INVALID: status.INVALID_ARGUMENT,
  ERR_WORKLOAD_API_UNAVAILABLE: status.UNAVAILABLE,
  ERR_WORKLOAD_API_RESPONSE_INVALID: status.UNAVAILABLE,
  ERR_AUTH_MISSING: status.UNAUTHENTICATED,
  ERR_ORIGIN_REFUSED: status.PERMISSION_DENIED,
  ERR_HOST_REFUSED: status.PERMISSION_DENIED,
  ERR_THROTTLED: status.RESOURCE_EXHAUSTED,
  ERR_POLICY_DENIED: status.PERMISSION_DENIED,
  ERR_UPSTREAM_UNAVAILABLE: status.UNAVAILABLE,
  ERR_UPSTREAM_TIMEOUT: status.DEADLINE_EXCEEDED,
  ERR_PEER_EXECUTED: status.PERMISSION_DENIED,
  ERR_PEER_TRACED: status.PERMISSION_DENIED,
  ERR_PEER_SOCKET_HANDED_ON: status.PERMISSION_DENIED,
  ERR_PEER_PRELOADED: status.PERMISSION_DENIED,
  ERR_ENTRY_ID_RESERVED: status.INVALID_ARGUMENT,
  ERR_CONNECTION_LIMIT: status.RESOURCE_EXHAUSTED,
  ERR_PENDING_NOT_FOUND: status.NOT_FOUND,
  ERR_PENDING_EXPIRED: status.FAILED_PRECONDITION,
  ERR_PENDING_DECIDED: status.FAILED_PRECONDITION,
  ERR_PENDING_LIMIT: status.RESOURCE_EXHAUSTED,
  ERR_TEMPLATE_INVALID: status.INVALID_ARGUMENT,
  ERR_DATASTORE_CORRUPT: status.FAILED_PRECONDITION,
  ERR_AUDIT_UNAVAILABLE: status.UNAVAILABLE,
  ERR_AUDIT_CHAIN_BROKEN: status.DATA_LOSS,
  ERR_AUDIT_CHECKPOINT_INVALID: status.DATA_LOSS,
  ERR_AUDIT_TRUNCATED: status.DATA_LOSS,
  ERR_AUDIT_CHECKPOINT_REFUSED: status.PERMISSION_DENIED,
  ERR_AUDIT_CHECKPOINT_CONFLICT: status.FAILED_PRECONDITION,
  ERR_PATH_INVALID: status.INVALID_ARGUMENT,
  ERR_UPGRADE_REFUSED: status.INVALID_ARGUMENT,
  ERR_MCP_HEADER_MISMATCH: status.INVALID_ARGUMENT,
  ERR_ADDON_UNAVAILABLE: status.UNAVAILABLE,
  ERR_ALREADY_RUNNING: status.FAILED_PRECONDITION,
  ERR_ADDRESS_IN_USE: status.UNAVAILABLE,
  ERR_ADMIN_API_UNAVAILABLE: status.UNAVAILABLE,
  ERR_INTERNAL: status.INTERNAL,
  // Like the other JWT validation failures (ValidateJWTSVID answers INVALID_ARGUMENT for an invalid token).
  ERR_CREDENTIAL_REVOKED: status.INVALID_ARGUMENT,
  ERR_REVOCATION_INVALID: status.INVALID_ARGUMENT,
  ERR_REVOCATION_LIMIT: status.RESOURCE_EXHAUSTED,
  ERR_TASK_AUDIENCE_UNKNOWN: status.PERMISSION_DENIED,
  ERR_SECRETS_FILE_INSECURE: status.FAILED_PRECONDITION,
  ERR_ROUTE_NOT_FOUND: status.NOT_FOUND,
  ERR_UPSTREAM_TOO_LARGE: status.RESOURCE_EXHAUSTED,
  ERR_PROXY_AUTH_MISSING: status.UNAUTHENTICATED,
  ERR_EGRESS_REFUSED: status.PERMISSION_DENIED,
  ERR_DELEGATE_UNAUTHORIZED: status.PERMISSION_DENIED,
  ERR_DELEGATE_SUBJECT_GONE: status.NOT_FOUND,
  ERR_LAUNCH_INVALID: status.INVALID_ARGUMENT,
  ERR_LAUNCH_PRIVILEGE: status.FAILED_PRECONDITION,
  ERR_LAUNCH_COMMAND_NOT_FOUND: status.NOT_FOUND,
  ERR_LAUNCH_NOT_IN_TREE: status.PERMISSION_DENIED,
  ERR_CALLER_TOKEN_MISSING: status.UNAUTHENTICATED,
  ERR_CALLER_TOKEN_INVALID: status.PERMISSION_DENIED,
}

/** The metadata key that carries the stable error code next to the gRPC status. */
export const ERROR_CODE_KEY = 'tessera-error-code'

/**
 * The trailer in which a Tessera agent says how long (ms) a refused caller should wait before it
 * asks again: the throttle's wait, or a short one while the caller's approval is pending.
 */
export const RETRY_AFTER_KEY = 'tessera-retry-after-ms'

/**
 * Initial metadata of a BeginTask (and of the server's NewTaskToken) that waits for a human
 * (DESIGN §11): the id of the pending request to approve or deny with `tessera approval`.
 */
export const AWAITING_APPROVAL_KEY = 'tessera-awaiting-approval'

/**
 * Turns any thrown value into a gRPC error for the client. An {@link IdentityError} keeps its
 * message and code (in the `tessera-error-code` trailer); anything else becomes INTERNAL with a
 * generic message — the real error must go to the log, never to the client.
 */
export function toServiceError(err: unknown): Partial<ServiceError> {
  const metadata = new Metadata()
  if (err instanceof IdentityError) {
    metadata.set(ERROR_CODE_KEY, err.code)
    return { code: statusFor[err.code], details: err.message, metadata }
  }
  metadata.set(ERROR_CODE_KEY, 'ERR_INTERNAL')
  return { code: status.INTERNAL, details: 'internal error', metadata }
}

/** The stable error code a server attached to a gRPC error, if any. */
export function errorCodeOf(err: unknown): string | undefined {
  const md = (err as { metadata?: Metadata } | undefined)?.metadata
  const value = md instanceof Metadata ? md.get(ERROR_CODE_KEY)[0] : undefined
  return typeof value === 'string' ? value : undefined
}

/** Hints shorter than this are read as this: a client never spins on a hint. */
const MIN_RETRY_AFTER_MS = 100
/** Hints longer than this are read as this: a client never sleeps for hours on one. */
const MAX_RETRY_AFTER_MS = 60_000

/**
 * The retry hint a server attached to a gRPC error ({@link RETRY_AFTER_KEY}), clamped to
 * 100 ms … 60 s; undefined when there is none or it is not a whole number of milliseconds.
 */
export function retryAfterMsOf(err: unknown): number | undefined {
  const md = (err as { metadata?: Metadata } | undefined)?.metadata
  const value = md instanceof Metadata ? md.get(RETRY_AFTER_KEY)[0] : undefined
  if (typeof value !== 'string' || !/^[0-9]{1,9}$/.test(value)) return undefined
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(MIN_RETRY_AFTER_MS, Number(value)))
}

/** Ends a server stream with the status `err` maps to (grpc-js turns an 'error' event into the final status). */
export function failStream(call: { emit(event: 'error', err: unknown): boolean }, err: unknown): void {
  call.emit('error', toServiceError(err))
}
