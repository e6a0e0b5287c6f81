/**
 * The per-request guard of `@tessera/spiffe`, for a tool that serves HTTP or WebSockets: each request
 * must carry a valid JWT-SVID (bearer) or client X509-SVID, pass the Host/Origin checks (DNS
 * rebinding, browser pages) and the policy (request-time intent included: a `Txn-Token` task token's
 * scopes and purpose, MCP methods, proof of possession); failed authentication is throttled and every decision
 * audited ({@link JsonLinesAudit} writes them as JSON lines).
 * @example
 * import { createGuard, guardRequests, JsonLinesAudit, Policy } from '@tessera/spiffe/guard'
 * const guard = createGuard({ jwtBundles: bundles, x509Bundles: bundles, audience: 'my-tool',
 *   allowedHosts: ['127.0.0.1'], policy: Policy.read('./policy.json'), audit: JsonLinesAudit.openFile('./audit.log') })
 * @packageDocumentation
 * @module @tessera/spiffe/guard
 */

export type { Authentication, AuthMethod } from './authenticate.js'
export {
  correlationIdOf,
  MAX_REQUEST_ID_LENGTH,
  REQUEST_ID_HEADER,
  requestIdOf,
  traceIdOf,
} from './correlation-id.js'
export {
  type AllowedRequest,
  type AllowedUpgrade,
  type CredentialEnded,
  createGuard,
  type GatewayAudit,
  type Guard,
  type GuardAllowed,
  type GuardCheckOptions,
  type GuardDecision,
  type GuardOptions,
  type GuardRefused,
  type GuardRequest,
  type RefusalStatus,
  type RequestDecided,
  type RequestProblem,
  type StreamCut,
} from './guard.js'
export {
  AUTH_METHOD_HEADER,
  callerOf,
  guardMiddleware,
  guardRequests,
  guardUpgrades,
  IDENTITY_HEADER,
  type MiddlewareOptions,
  type Refusal,
  type VerifiedCaller,
} from './http-middleware.js'
export {
  type AuditLine,
  type AuditLineSink,
  auditLineOf,
  JsonLinesAudit,
  type JsonLinesAuditOptions,
} from './json-lines-audit.js'
export {
  type PathCase,
  Policy,
  type PolicyDecision,
  type PolicyEffect,
  type PolicyRequest,
  type PolicyTask,
  type UnmetIntent,
} from './policy.js'
export { type GuardProofOptions, TASK_TOKEN_HEADER } from './proof.js'
export { actorOfRequest, resourceOf } from './request-record.js'
export { endCutResponse, isEventStream } from './response-watch.js'
export { FailureThrottle, type ThrottleOptions, type ThrottleVerdict } from './throttle.js'
