import type { JwtBundleSource, X509BundleSource } from '../core/bundle/bundle-source.js'
import { type Clock, systemClock } from '../core/clock.js'
import { type ErrorCode, IdentityError, isIdentityError } from '../core/errors.js'
import { ValidatedJwtSvidCache } from '../core/jwt/jwt-svid-cache.js'
import { VerifiedSignatures } from '../core/jwt/verified-signatures.js'
import type { RevocationListSource } from '../core/revocation.js'
import { type Authorizer, authorizeAny } from '../verify/authorizer.js'
import { type Authentication, authenticate } from './authenticate.js'
import { bindCorrelationId, correlationIdOf } from './correlation-id.js'
import { watchCredential } from './credential-watch.js'
import type {
  AllowedRequest,
  AllowedUpgrade,
  CredentialEnded,
  GatewayAudit,
  GuardAllowed,
  GuardCheckOptions,
  GuardDecision,
  GuardRequest,
} from './decision.js'
import { byPolicy, policyRequestOf } from './guard-policy.js'
import { checkTaskToken, delegatedSubjectOf } from './guard-task.js'
import { hostOfHeader, normalizeAllowedHost, normalizeAllowedOrigin, originOfHeader } from './host-origin.js'
import type { Policy } from './policy.js'
import {
  authenticateProof,
  carriesWit,
  type GuardProofOptions,
  type ProofSettings,
  settleProof,
} from './proof.js'
import { canonicalRequestPath } from './request-path.js'
import { watchRevocation } from './revocation-watch.js'
import { FailureThrottle } from './throttle.js'
import { ThrottledAudit } from './throttle-audit.js'
import { publicDecision, refused, type Verdict } from './verdict.js'

export type {
  AllowedRequest,
  AllowedUpgrade,
  CredentialEnded,
  GatewayAudit,
  GuardAllowed,
  GuardCheckOptions,
  GuardDecision,
  GuardRefused,
  GuardRequest,
  RefusalStatus,
  RequestDecided,
  RequestProblem,
  StreamCut,
} from './decision.js'

/** What {@link createGuard} needs. */
export interface GuardOptions {
  /** JWT bundles to validate bearer JWT-SVIDs with (a `BundleSource` or `JwtSource`). */
  readonly jwtBundles: JwtBundleSource
  /** X.509 bundles to verify client certificates with (a `BundleSource` or `X509Source`). */
  readonly x509Bundles: X509BundleSource
  /** The audience bearer tokens must carry (any one of them). */
  readonly audience: string | ReadonlyArray<string>
  /** Runs after authentication; default `authorizeAny()`. */
  readonly authorizer?: Authorizer
  /** Evaluated on every authenticated request; default none (everything authenticated passes). */
  readonly policy?: Policy
  /** Origins whose browser pages may call (`https://app.example`); a request with any other Origin is refused. */
  readonly allowedOrigins?: ReadonlyArray<string>
  /** Names the Host header must carry (compared without the port): the DNS-rebinding defence. */
  readonly allowedHosts: ReadonlyArray<string>
  /** Failed-authentication throttle; default a {@link FailureThrottle} with its defaults; `null` for none. */
  readonly throttle?: FailureThrottle | null
  /**
   * The throttle's key for a request before it authenticates. Default: the peer address, which
   * cannot tell local processes apart; `tessera gateway` keys loopback peers by their uid
   * (`localPeerKey`, NETLINK_SOCK_DIAG).
   */
  readonly peerKey?: (request: GuardRequest) => string
  readonly audit: GatewayAudit
  readonly clock?: Clock
  /** Skew tolerated on JWT times; default 30 s. */
  readonly jwtLeewayMs?: number
  /** WIT-SVID + Workload Proof Token authentication, and whether proof of possession is required. */
  readonly proof?: GuardProofOptions
  /**
   * Revoked credentials (a `RevocationSource`, DESIGN §11): a revoked JWT-SVID or X509-SVID is
   * refused with 401 ERR_CREDENTIAL_REVOKED, and {@link Guard.watchRevocation} tells when an open
   * WebSocket's credential gets revoked.
   */
  readonly revocations?: RevocationListSource
}

/** Checks requests; see {@link createGuard}. */
export interface Guard {
  /**
   * Decides one request and audits the decision. Rejects only on a bug (a non-IdentityError from
   * a source or the authorizer).
   */
  check(request: GuardRequest, options?: GuardCheckOptions): Promise<GuardDecision>
  /** True when the policy has `tools`, `mcpMethods` or `methods` rules: every WebSocket message must then be decided. */
  readonly inspectsMessages: boolean
  /**
   * Decides one message of an allowed WebSocket as a `POST` of it to the upgrade's path, by the
   * tools and MCP methods it calls (undefined: unreadable, which deny rules with `tools` or
   * `mcpMethods` match) and the upgrade's task and proof; audits a denial and an allowed tool call
   * (subject `WS <path>`).
   */
  checkMessage(
    upgrade: AllowedUpgrade,
    tools: ReadonlyArray<string> | undefined,
    mcpMethods?: ReadonlyArray<string> | undefined,
  ): GuardDecision
  /** Audits the gateway's ending an allowed WebSocket: its credential expired, or a frame was unreadable. */
  recordWebSocketEnd(upgrade: AllowedUpgrade, why: { code: ErrorCode; reason: string }): void
  /**
   * Calls `onRevoked` once when the credential an allowed WebSocket was opened with is revoked (with
   * `revocations` that can tell of changes; else never): close the WebSocket then, and pass `why` to
   * {@link Guard.recordWebSocketEnd}. Returns the unsubscribe function.
   * @example
   * const stop = guard.watchRevocation(upgrade, (why) => { ws.close(1008, 'credential revoked'); guard.recordWebSocketEnd(upgrade, why) })
   */
  watchRevocation(
    upgrade: AllowedUpgrade,
    onRevoked: (why: { code: ErrorCode; reason: string }) => void,
  ): () => void
  /**
   * Calls `onEnded` once when the credential an allowed request was admitted with (or its task) is
   * revoked, or expires (a timer at its `expiresAtMs`, by the guard's clock): the guard middleware
   * ends a reply still streaming then. Returns the function that stops watching.
   * @example
   * const stop = guard.watchCredential({ request: req, allowed }, (why) => { guard.recordStreamCut({ request: req, allowed }, why); res.end() })
   */
  watchCredential(admitted: AllowedRequest, onEnded: (why: CredentialEnded) => void): () => void
  /** Audits a reply cut because its credential was revoked or expired (`GatewayAudit.streamCut`). */
  recordStreamCut(admitted: AllowedRequest, why: CredentialEnded): void
}

function rawPath(target: string | undefined): string {
  return (target ?? '').split('?')[0]?.slice(0, 256) ?? ''
}

/** An authenticated caller, before the authorizer and the policy. */
type Verified = Extract<Authentication, { kind: 'verified' }>

/** One request being decided. */
interface Pending {
  readonly request: GuardRequest
  readonly options: GuardCheckOptions
  readonly path: string
}

/** The guard's settings, normalized once. */
interface Settings {
  readonly options: GuardOptions
  readonly hosts: ReadonlySet<string>
  readonly origins: ReadonlySet<string>
  readonly audience: ReadonlyArray<string>
  readonly clock: Clock
  readonly throttle: FailureThrottle | null
  readonly throttledAudit: ThrottledAudit
  readonly peerKey: (request: GuardRequest) => string
  readonly authorize: Authorizer
  readonly proof: ProofSettings | undefined
  /** Bearer JWT-SVIDs already verified, by token: one signature check per token and bundle. */
  readonly jwtCache: ValidatedJwtSvidCache
  /** Task tokens whose signature verified, by token and key. */
  readonly taskSignatures: VerifiedSignatures
}

function settle(options: GuardOptions): Settings {
  const hosts = new Set(options.allowedHosts.map(normalizeAllowedHost))
  const origins = new Set((options.allowedOrigins ?? []).map(normalizeAllowedOrigin))
  const audience = typeof options.audience === 'string' ? [options.audience] : [...options.audience]
  if (hosts.size === 0)
    throw new IdentityError('ERR_CONFIG_INVALID', 'the guard needs at least one allowed host')
  if (audience.length === 0 || audience.some((a) => a.length === 0))
    throw new IdentityError('ERR_CONFIG_INVALID', 'the guard needs a non-empty audience')
  const clock = options.clock ?? systemClock
  return {
    options,
    hosts,
    origins,
    audience,
    clock,
    throttle: options.throttle === undefined ? new FailureThrottle({ clock }) : options.throttle,
    throttledAudit: new ThrottledAudit(),
    peerKey: options.peerKey ?? ((r) => r.socket.remoteAddress ?? 'unknown'),
    authorize: options.authorizer ?? authorizeAny(),
    proof: settleProof(options.proof),
    jwtCache: new ValidatedJwtSvidCache(),
    taskSignatures: new VerifiedSignatures(),
  }
}

/** Host, Origin and path: the checks before any credential is looked at. Returns the canonical path. */
function screen(s: Settings, request: GuardRequest): Verdict | string {
  const host = hostOfHeader(request.headers.host)
  if (host === undefined || !s.hosts.has(host))
    return refused(421, 'ERR_HOST_REFUSED', 'the Host header does not name this service')
  const origin = request.headers.origin
  if (origin !== undefined && !s.origins.has(originOfHeader(origin) ?? '\0'))
    return refused(403, 'ERR_ORIGIN_REFUSED', `origin ${JSON.stringify(origin.slice(0, 200))} is not allowed`)
  const upgrade = upgradeProblem(request)
  if (upgrade !== undefined) return refused(400, 'ERR_UPGRADE_REFUSED', upgrade)
  try {
    const path = canonicalRequestPath(request.url)
    s.options.policy?.checkPath(path)
    return path
  } catch (err) {
    if (!isIdentityError(err)) throw err
    return refused(400, err.code, err.message)
  }
}

/**
 * Why an `Upgrade` request is refused: only a WebSocket (`GET`, `Upgrade: websocket`) may switch
 * protocols. Anything else, `h2c` above all, would carry requests the guard never sees.
 */
function upgradeProblem(request: GuardRequest): string | undefined {
  const upgrade = request.headers.upgrade
  if (upgrade === undefined) return undefined
  if (upgrade.trim().toLowerCase() !== 'websocket')
    return `upgrading to ${JSON.stringify(upgrade.slice(0, 40))} is not allowed: only websocket`
  if ((request.method ?? 'GET') !== 'GET') return 'a WebSocket upgrade must be a GET request'
  return undefined
}

/** The throttle, then authentication; failures count toward the throttle. */
async function identify(s: Settings, request: GuardRequest): Promise<Verdict | Verified> {
  const key = s.peerKey(request)
  const blocked = s.throttle?.check(key)
  if (blocked?.isBlocked) return throttled(s, key, blocked)
  const auth = await authenticateAny(s, request)
  if (auth.kind === 'missing') return refused(401, 'ERR_AUTH_MISSING', auth.reason)
  if (auth.kind === 'verified' && auth.via === 'jwt' && s.proof?.required === true) {
    const reason =
      'proof of possession is required: a bearer JWT-SVID alone is refused (send a WIT-SVID with a Workload-Proof-Token, or a client certificate)'
    return refused(401, 'ERR_PROOF_MISSING', reason, { via: auth.via, claimedId: auth.id.toString() })
  }
  if (auth.kind === 'verified') return auth
  s.throttle?.recordFailure(key)
  const extra = { via: auth.via, ...(auth.claimedId !== undefined && { claimedId: auth.claimedId }) }
  return refused(401, auth.error.code, auth.error.message, extra)
}

/** A request with a WIT is decided by its proof (when the guard takes proofs); any other by `authenticate`. */
async function authenticateAny(s: Settings, request: GuardRequest): Promise<Authentication> {
  const nowMs = s.clock.nowMs()
  if (s.proof !== undefined && carriesWit(request))
    return authenticateProof(request, s.proof, nowMs, s.options.revocations)
  const { jwtBundles, x509Bundles, jwtLeewayMs, revocations } = s.options
  const deps = { jwtBundles, x509Bundles, audience: s.audience, nowMs, jwtLeewayMs, revocations }
  return authenticate(request, { ...deps, jwtCache: s.jwtCache })
}

/** A 429; only the first of each block of a key is audited, with a count of the previous block's others. */
function throttled(
  s: Settings,
  key: string,
  block: { readonly retryAfterMs: number; readonly blockedUntilMs: number },
  extra: object = {},
): Verdict {
  const retryAfterSeconds = Math.max(1, Math.ceil(block.retryAfterMs / 1000))
  const gate = s.throttledAudit.admit(key, block.blockedUntilMs)
  const before =
    gate.isRecorded && gate.unrecorded > 0 ? `; ${gate.unrecorded} more refused in the previous block` : ''
  const what = key.startsWith(ID_KEY_PREFIX) ? 'refused requests' : 'failed authentications'
  const reason = `too many ${what} from ${key}: refused for ${retryAfterSeconds} s, recorded once per block${before}`
  return refused(429, 'ERR_THROTTLED', reason, {
    retryAfterSeconds,
    isSummarised: !gate.isRecorded,
    ...extra,
  })
}

/**
 * The throttle key of an authenticated caller (DESIGN §10: throttled per authenticated identity): a
 * caller refused again and again (probing the authorizer or the policy) is slowed down by its own
 * SPIFFE ID, whichever process or address it calls from, and no other caller is.
 */
const ID_KEY_PREFIX = 'spiffe-id '

/**
 * The caller's own throttle, then the authorizer and the policy; a refusal counts toward that
 * caller's throttle.
 */
async function permit(s: Settings, pending: Pending, caller: Verified): Promise<Verdict> {
  const key = `${ID_KEY_PREFIX}${caller.id}`
  const blocked = s.throttle?.check(key)
  if (blocked?.isBlocked) return throttled(s, key, blocked, { id: caller.id, via: caller.via })
  const verdict = await authorizeCaller(s, pending, caller)
  if (!verdict.allowed) s.throttle?.recordFailure(key)
  return verdict
}

/** The authorizer, the request's own check (`inspectRequest`), then the policy, for an authenticated caller. */
async function authorizeCaller(s: Settings, pending: Pending, caller: Verified): Promise<Verdict> {
  const { request, path } = pending
  const { id, via } = caller
  try {
    s.authorize(id)
  } catch (err) {
    if (!isIdentityError(err)) throw err
    return refused(403, err.code, err.message, { id, via })
  }
  const checked = await checkTaskToken(request, id, {
    jwtBundles: s.options.jwtBundles,
    audience: s.audience,
    nowMs: s.clock.nowMs(),
    revocations: s.options.revocations,
    signatures: s.taskSignatures,
  })
  if (checked.kind === 'refused') return refused(checked.status, checked.code, checked.reason, { id, via })
  const task = checked.kind === 'valid' ? checked.task : undefined
  // The task id follows the request: its audit lines (even a refusal's) and X-Request-Id.
  if (task !== undefined) bindCorrelationId(request, task.taskId)
  const problem = await pending.options.inspectRequest?.()
  if (problem !== undefined) return refused(400, problem.code, problem.reason, { id, via, task })
  const { policy } = s.options
  const allowed: GuardAllowed = {
    allowed: true as const,
    id,
    via,
    path,
    expiresAtMs: Math.min(caller.expiresAtMs, task?.expiresAtMs ?? Number.POSITIVE_INFINITY),
    credential: caller.credential,
    ...(task !== undefined && { task }),
  }
  if (policy === undefined) return allowed
  const isUpgrade = request.headers.upgrade !== undefined
  // A WebSocket's tools and MCP methods are in its messages, each decided on its own (checkMessage).
  const tools = !policy.usesTools || isUpgrade ? [] : await pending.options.readTools?.()
  const mcpMethods = !policy.usesMcpMethods || isUpgrade ? [] : await pending.options.readMcpMethods?.()
  const calls = { tools, mcpMethods }
  return byPolicy(policy.evaluate(policyRequestOf(allowed, request.method ?? 'GET', calls)), allowed, calls)
}

/** The guard's decision on one WebSocket message; audited when denied or when it calls a tool. */
function decideMessage(
  s: Settings,
  upgrade: AllowedUpgrade,
  tools: ReadonlyArray<string> | undefined,
  mcpMethods: ReadonlyArray<string> | undefined,
): GuardDecision {
  const { allowed, request } = upgrade
  const policy = s.options.policy
  const calls = { tools, mcpMethods }
  const verdict =
    policy === undefined
      ? allowed
      : byPolicy(policy.evaluate(policyRequestOf(allowed, 'POST', calls)), allowed, calls)
  const pending = { request, options: {}, path: allowed.path }
  if (!verdict.allowed || (tools?.length ?? 0) > 0) record(s, pending, verdict, 'WS')
  return publicDecision(verdict)
}

/** Audits a decision; `method` is `WS` for a WebSocket's messages and its end. */
function record(s: Settings, { request, path }: Pending, verdict: Verdict, method?: string): void {
  const id = verdict.id?.toString()
  const delegated = delegatedSubjectOf(verdict.task)
  s.options.audit.requestDecided({
    outcome: verdict.allowed ? 'allowed' : 'denied',
    method: method ?? request.method ?? 'GET',
    path,
    address: request.socket.remoteAddress ?? 'unknown',
    ...(id !== undefined && { spiffeId: id }),
    ...(verdict.claimedId !== undefined && { claimedSpiffeId: verdict.claimedId }),
    ...(verdict.via !== undefined && { via: verdict.via }),
    code: verdict.allowed ? 'OK' : verdict.code,
    ...(!verdict.allowed && { reason: verdict.reason }),
    ...(verdict.tools !== undefined && { tools: verdict.tools }),
    ...(verdict.mcpMethods !== undefined && { mcpMethods: verdict.mcpMethods }),
    correlationId: verdict.task?.taskId ?? correlationIdOf(request),
    ...(delegated !== undefined && { delegatedSubject: delegated }),
  })
}

/** Audits a cut reply: `GatewayAudit.streamCut`, else a denial through `requestDecided`. */
function recordCut(s: Settings, { request, allowed }: AllowedRequest, why: CredentialEnded): void {
  const { audit } = s.options
  const pending = { request, options: {}, path: allowed.path }
  const { id, via, task } = allowed
  if (audit.streamCut === undefined) {
    const verdict = refused(401, why.code, why.reason, { id, via, ...(task !== undefined && { task }) })
    record(s, pending, verdict)
    return
  }
  const delegated = delegatedSubjectOf(task)
  audit.streamCut({
    method: request.method ?? 'GET',
    path: allowed.path,
    address: request.socket.remoteAddress ?? 'unknown',
    spiffeId: id.toString(),
    via,
    ...why,
    correlationId: task?.taskId ?? correlationIdOf(request),
    ...(delegated !== undefined && { delegatedSubject: delegated }),
  })
}

async function decide(
  s: Settings,
  request: GuardRequest,
  options: GuardCheckOptions,
): Promise<GuardDecision> {
  const screened = screen(s, request)
  const pending = { request, options, path: typeof screened === 'string' ? screened : rawPath(request.url) }
  let verdict: Verdict | Verified = typeof screened === 'string' ? await identify(s, request) : screened
  if ('kind' in verdict) verdict = await permit(s, pending, verdict)
  if (verdict.isSummarised !== true) record(s, pending, verdict)
  return publicDecision(verdict)
}

/**
 * The per-request identity guard: in order, the `Host` header must name one of `allowedHosts`
 * (421), an `Origin` header must be on `allowedOrigins` (403), the path must be unambiguous (400),
 * a throttled peer is refused (429 with `Retry-After`), then the caller must authenticate with an
 * X509-SVID client certificate or a bearer JWT-SVID for `audience` (401; failures count toward the
 * throttle), not be throttled by its own SPIFFE ID (429), and pass the authorizer (403), the
 * request's own check when the caller gives one (`inspectRequest`, 400) and the policy (403);
 * these refusals count toward that identity's throttle. Every decision is audited.
 * @throws ERR_CONFIG_INVALID when `allowedHosts` is empty, an origin or host is malformed, or the audience is empty
 * @example
 * const guard = createGuard({
 *   jwtBundles: bundles, x509Bundles: bundles, audience: 'my-tool',
 *   allowedHosts: ['127.0.0.1', 'localhost'], audit,
 * })
 * const decision = await guard.check(req)
 * if (decision.allowed) console.log(decision.id.toString(), decision.via)
 */
export function createGuard(options: GuardOptions): Guard {
  const settings = settle(options)
  return {
    check: (request, options = {}) => decide(settings, request, options),
    inspectsMessages: options.policy?.decidesMessages ?? false,
    checkMessage: (upgrade, tools, mcpMethods) => decideMessage(settings, upgrade, tools, mcpMethods),
    recordWebSocketEnd(upgrade, why) {
      const { allowed, request } = upgrade
      const pending = { request, options: {}, path: allowed.path }
      const { id, via, task } = allowed
      const verdict = refused(403, why.code, why.reason, { id, via, ...(task !== undefined && { task }) })
      record(settings, pending, verdict, 'WS')
    },
    watchRevocation: (upgrade, onRevoked) => watchRevocation(options.revocations, upgrade, onRevoked),
    watchCredential: (admitted, onEnded) =>
      watchCredential(
        { revocations: options.revocations, clock: settings.clock },
        admitted,
        onEnded,
        'response cut',
      ),
    recordStreamCut: (admitted, why) => recordCut(settings, admitted, why),
  }
}
