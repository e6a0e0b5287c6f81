/**
 * Stable error codes. Codes are API: add new ones, never rename or reuse one.
 * Adapters map each code to a transport status through one table (`Record<ErrorCode, …>`),
 * so the compiler reports any code that is left unmapped.
 */
export type ErrorCode =
  // SPIFFE IDs, trust domains, selectors
  | 'ERR_ID_INVALID'
  | 'ERR_TRUST_DOMAIN_INVALID'
  | 'ERR_SELECTOR_INVALID'
  | 'ERR_DNS_NAME_INVALID'
  // encodings
  | 'ERR_DER_MALFORMED'
  | 'ERR_PEM_MALFORMED'
  | 'ERR_CERT_MALFORMED'
  | 'ERR_KEY_MALFORMED'
  | 'ERR_KEY_MISMATCH'
  | 'ERR_CSR_MALFORMED'
  | 'ERR_CSR_SIGNATURE_INVALID'
  // X509-SVIDs
  | 'ERR_X509_SVID_INVALID'
  | 'ERR_X509_SVID_UNTRUSTED'
  | 'ERR_X509_SVID_EXPIRED'
  // JWT-SVIDs
  | 'ERR_JWT_MALFORMED'
  | 'ERR_JWT_ALG_UNSUPPORTED'
  | 'ERR_JWT_INVALID'
  | 'ERR_JWT_KEY_NOT_FOUND'
  | 'ERR_JWT_SIGNATURE_INVALID'
  | 'ERR_JWT_EXPIRED'
  | 'ERR_JWT_NOT_YET_VALID'
  | 'ERR_JWT_AUDIENCE_MISMATCH'
  // WIT-SVIDs and Workload Proof Tokens (proof of possession, DESIGN §11)
  | 'ERR_WIT_INVALID'
  | 'ERR_PROOF_MISSING'
  | 'ERR_PROOF_INVALID'
  | 'ERR_PROOF_AUDIENCE_MISMATCH'
  | 'ERR_PROOF_EXPIRED'
  | 'ERR_PROOF_BINDING_MISMATCH'
  | 'ERR_PROOF_REPLAYED'
  // task tokens (DESIGN §11)
  | 'ERR_TASK_TOKEN_INVALID'
  | 'ERR_TASK_SCOPE_WIDENED'
  | 'ERR_TASK_SCOPE_MISSING'
  | 'ERR_TASK_NOT_FOUND'
  | 'ERR_TASK_ENDED'
  | 'ERR_TASK_TOKEN_MISSING'
  | 'ERR_TASK_SUBJECT_MISMATCH'
  | 'ERR_TASK_DENIED'
  | 'ERR_APPROVAL_TIMEOUT'
  // bundles
  | 'ERR_BUNDLE_MALFORMED'
  | 'ERR_BUNDLE_NOT_FOUND'
  // the CA and its keys
  | 'ERR_TTL_INVALID'
  | 'ERR_CA_NOT_READY'
  | 'ERR_CA_EXPIRED'
  | 'ERR_KEY_STORE_CORRUPT'
  | 'ERR_KEY_STORE_IO'
  // registration entries, join tokens, agents
  | 'ERR_ENTRY_INVALID'
  | 'ERR_ENTRY_NOT_FOUND'
  | 'ERR_ENTRY_EXISTS'
  | 'ERR_ENTRY_REVISION_CONFLICT'
  | 'ERR_PAGE_TOKEN_INVALID'
  | 'ERR_JOIN_TOKEN_INVALID'
  | 'ERR_AGENT_NOT_FOUND'
  | 'ERR_AGENT_EXISTS'
  | 'ERR_AGENT_BANNED'
  | 'ERR_AGENT_UNAUTHORIZED'
  // storage and configuration
  | 'ERR_DATASTORE_IO'
  | 'ERR_DATASTORE_SCHEMA'
  | 'ERR_CONFIG_INVALID'
  // callers and requests
  | 'ERR_ATTESTATION_FAILED'
  | 'ERR_PEER_UNAUTHORIZED'
  | 'ERR_NO_IDENTITY'
  | 'ERR_UNIMPLEMENTED'
  | 'ERR_REQUEST_INVALID'
  | 'ERR_REQUEST_TOO_LARGE'
  // the Workload API client
  | 'ERR_ENDPOINT_INVALID'
  | 'ERR_WORKLOAD_API_UNAVAILABLE'
  | 'ERR_WORKLOAD_API_RESPONSE_INVALID'
  // the request guard and the gateway (HTTP callers of a tool)
  | 'ERR_AUTH_MISSING'
  | 'ERR_ORIGIN_REFUSED'
  | 'ERR_HOST_REFUSED'
  | 'ERR_THROTTLED'
  | 'ERR_POLICY_DENIED'
  | 'ERR_UPSTREAM_UNAVAILABLE'
  | 'ERR_UPSTREAM_TIMEOUT'
  // binding a connection to the process that made it (DESIGN §6.1)
  | 'ERR_PEER_EXECUTED'
  | 'ERR_PEER_TRACED'
  | 'ERR_PEER_SOCKET_HANDED_ON'
  | 'ERR_PEER_PRELOADED'
  // reserved identities and resource limits (DESIGN §6.1, §9, §10)
  | 'ERR_ENTRY_ID_RESERVED'
  | 'ERR_CONNECTION_LIMIT'
  // pending requests and approvals (DESIGN §10)
  | 'ERR_PENDING_NOT_FOUND'
  | 'ERR_PENDING_EXPIRED'
  | 'ERR_PENDING_DECIDED'
  | 'ERR_PENDING_LIMIT'
  | 'ERR_TEMPLATE_INVALID'
  // failure that must never pass for a fresh install or a committed write (DESIGN §7, §9)
  | 'ERR_DATASTORE_CORRUPT'
  | 'ERR_AUDIT_UNAVAILABLE'
  // an audit file's hash chain or a checkpoint over it does not hold (edited, deleted, reordered, cut)
  | 'ERR_AUDIT_CHAIN_BROKEN'
  | 'ERR_AUDIT_CHECKPOINT_INVALID'
  // checkpoints held by the server (DESIGN §10): a file shorter than, or other than, what it signed;
  // a checkpoint reported for an origin its reporter may not speak for; one that goes back in size
  | 'ERR_AUDIT_TRUNCATED'
  | 'ERR_AUDIT_CHECKPOINT_REFUSED'
  | 'ERR_AUDIT_CHECKPOINT_CONFLICT'
  // the gateway's request shape
  | 'ERR_PATH_INVALID'
  | 'ERR_UPGRADE_REFUSED'
  // an MCP request whose Mcp-Method/Mcp-Name headers (MCP 2026-07-28) do not match its JSON-RPC body
  | 'ERR_MCP_HEADER_MISMATCH'
  // a process that cannot run as installed (DESIGN §5: the native addon is built at install)
  | 'ERR_ADDON_UNAVAILABLE'
  // `tessera up` (development mode): a process of an earlier run still alive, a port taken
  | 'ERR_ALREADY_RUNNING'
  | 'ERR_ADDRESS_IN_USE'
  // the CLI: the admin API could not be reached; a failure nobody gave a code to (a bug)
  | 'ERR_ADMIN_API_UNAVAILABLE'
  | 'ERR_INTERNAL'
  // revocation (DESIGN §11): a revoked credential presented; a bad revoke request; the list is full
  | 'ERR_CREDENTIAL_REVOKED'
  | 'ERR_REVOCATION_INVALID'
  | 'ERR_REVOCATION_LIMIT'
  | 'ERR_TASK_AUDIENCE_UNKNOWN'
  // the broker (DESIGN §12): a secrets file others can read; no route for the path; an upstream
  // answer over the size cap; a forward-proxy caller without identity, or asking for a host its
  // allowlist does not name
  | 'ERR_SECRETS_FILE_INSECURE'
  | 'ERR_ROUTE_NOT_FOUND'
  | 'ERR_UPSTREAM_TOO_LARGE'
  | 'ERR_PROXY_AUTH_MISSING'
  | 'ERR_EGRESS_REFUSED'
  // delegated identity and `tessera launch` (DESIGN §13): a caller not allowed to act for another
  // process; a subject pid that is gone or not the one meant; a launch name or request that is malformed;
  // a step the launcher lacks the privilege for; a command that does not exist; a peer outside the tree
  | 'ERR_DELEGATE_UNAUTHORIZED'
  | 'ERR_DELEGATE_SUBJECT_GONE'
  | 'ERR_LAUNCH_INVALID'
  | 'ERR_LAUNCH_PRIVILEGE'
  | 'ERR_LAUNCH_COMMAND_NOT_FOUND'
  | 'ERR_LAUNCH_NOT_IN_TREE'
  // the broker attaching a launched caller's own identity to a request for a Tessera gateway: no
  // Tessera-Caller-Token for the gateway's audience; one that fails to verify or names another subject
  | 'ERR_CALLER_TOKEN_MISSING'
  | 'ERR_CALLER_TOKEN_INVALID'

/** The one error type thrown by `lib/` and use-case code. Foreign errors are wrapped and kept as `cause`. */
export class IdentityError extends Error {
  readonly code: ErrorCode

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'IdentityError'
    this.code = code
  }
}

/** True when `err` is an {@link IdentityError}, optionally with the given code. */
export function isIdentityError(err: unknown, code?: ErrorCode): err is IdentityError {
  return err instanceof IdentityError && (code === undefined || err.code === code)
}

/**
 * Runs `fn`; any error that is not already an {@link IdentityError} is wrapped with `code`.
 * Used at the edges where foreign libraries (node:crypto, jose) throw their own errors.
 */
export function wrapErrors<T>(code: ErrorCode, message: string, fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    if (err instanceof IdentityError) throw err
    throw new IdentityError(code, message, { cause: err })
  }
}
