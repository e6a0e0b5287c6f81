import type { KeyObject } from 'node:crypto'
import { randomBytes } from 'node:crypto'
import { CompactSign } from 'jose'
import type { JwtBundleSource } from '../bundle/bundle-source.js'
import { IdentityError, isIdentityError } from '../errors.js'
import { toLowS } from '../jwt/ecdsa-low-s.js'
import { cryptoKeyFor } from '../jwt/jwt-svid.js'
import type { VerifiedSignatures } from '../jwt/verified-signatures.js'
import { checkNotRevoked, type RevocationListSource } from '../revocation.js'
import { SpiffeId } from '../spiffe-id.js'
import { decodeCompactJwt } from '../wit/compact-jwt.js'
import { firstAlgorithm, verifyJws } from '../wit/wit-svid.js'

/** The `typ` of a task token: an OAuth Transaction Token (draft-ietf-oauth-transaction-tokens). */
export const TASK_TOKEN_TYP = 'txntoken+jwt'
/** Clock skew tolerated on `exp` and `iat` unless told otherwise. */
export const DEFAULT_TASK_LEEWAY_MS = 30_000
/** Longest task id accepted. */
export const MAX_TASK_ID_LENGTH = 64

/** The requesting process, as its agent attested it (`rctx`). */
export interface TaskRequester {
  readonly pid: number
  /** Hex SHA-256 of the executable image; empty when unknown. */
  readonly exeSha256: string
  /** The agent's host name. */
  readonly host: string
}

/** A task token, decoded. */
export interface TaskToken {
  /** `txn`: the task id; a renewed token keeps it. */
  readonly taskId: string
  /** `sub`: the workload the task acts as. */
  readonly subject: SpiffeId
  readonly audiences: ReadonlyArray<string>
  /** `scope`, split on spaces. */
  readonly scopes: ReadonlyArray<string>
  /** `req_wl`: the workload that asked the server for the token (the agent, see docs/tasks.md). */
  readonly requestingWorkload: string
  /** `tctx.purpose`. */
  readonly purpose: string
  /** `tctx.consent`: how the task was allowed (`entry`: by the registration entry alone). */
  readonly consent: string
  /** `tctx.approved_by`: who approved a task whose consent is `human`. */
  readonly approvedBy?: string
  /** `tctx.parent`: the parent task's id, for a sub-task. */
  readonly parentTaskId?: string
  readonly requester: TaskRequester
  readonly issuedAtMs: number
  readonly expiresAtMs: number
  readonly jti: string
  readonly claims: Readonly<Record<string, unknown>>
  readonly token: string
}

/** What {@link mintTaskToken} needs. */
export interface MintTaskTokenParams {
  readonly taskId: string
  readonly subject: SpiffeId
  readonly audiences: ReadonlyArray<string>
  readonly scopes: ReadonlyArray<string>
  readonly requestingWorkload: string
  readonly purpose: string
  /** `entry` (the default) or `human` (then `approvedBy` names who approved). */
  readonly consent?: string
  readonly approvedBy?: string
  readonly parentTaskId?: string
  readonly requester: TaskRequester
  readonly key: Readonly<{ kid: string; privateKey: KeyObject }>
  readonly nowMs: number
  /** The expiry, already capped by the caller (TTL, entry, parent, key); whole seconds are kept. */
  readonly expiresAtMs: number
}

const encoder = new TextEncoder()

/**
 * Signs a task token with the trust domain's JWT authority: header `{alg, kid, typ: txntoken+jwt}`,
 * claims `iss` (the trust domain), `txn`, `sub`, `aud`, `scope`, `req_wl`, `tctx`, `rctx`, `iat`,
 * `exp`, `jti`.
 * @throws ERR_TTL_INVALID when it would not outlive its issue second; ERR_KEY_MALFORMED
 */
export async function mintTaskToken(params: MintTaskTokenParams): Promise<string> {
  const { subject, key } = params
  const iat = Math.floor(params.nowMs / 1000)
  const exp = Math.floor(params.expiresAtMs / 1000)
  if (!Number.isFinite(iat) || !Number.isFinite(exp) || exp <= iat)
    throw new IdentityError('ERR_TTL_INVALID', 'the task token would expire within its issue second')
  const alg = firstAlgorithm(key.privateKey)
  const claims = {
    iss: subject.trustDomain.idString(),
    txn: params.taskId,
    sub: subject.toString(),
    aud: [...params.audiences],
    scope: params.scopes.join(' '),
    req_wl: params.requestingWorkload,
    tctx: {
      purpose: params.purpose,
      consent: params.consent ?? 'entry',
      ...(params.approvedBy !== undefined && { approved_by: params.approvedBy }),
      ...(params.parentTaskId !== undefined && { parent: params.parentTaskId }),
    },
    rctx: { pid: params.requester.pid, exe_sha256: params.requester.exeSha256, host: params.requester.host },
    iat,
    exp,
    jti: randomBytes(16).toString('base64url'),
  }
  const signingKey = await cryptoKeyFor(key.privateKey, alg)
  try {
    const token = await new CompactSign(encoder.encode(JSON.stringify(claims)))
      .setProtectedHeader({ alg, kid: key.kid, typ: TASK_TOKEN_TYP })
      .sign(signingKey)
    return toLowS(alg, token)
  } catch (err) {
    throw new IdentityError('ERR_KEY_MALFORMED', 'signing the task token failed', { cause: err })
  }
}

/**
 * Decodes a task token and checks its shape **without its signature or times**: compact JWS, an
 * allowed `alg`, `typ` txntoken+jwt, a `kid`, and every claim above with its type.
 * @throws ERR_JWT_MALFORMED, ERR_JWT_ALG_UNSUPPORTED, ERR_TASK_TOKEN_INVALID
 */
export function parseTaskTokenInsecure(
  token: string,
): TaskToken & { readonly kid: string; readonly alg: string } {
  const { header, claims } = decodeCompactJwt(token, 'task token')
  if (header.typ !== TASK_TOKEN_TYP) throw invalid(`"typ" must be ${TASK_TOKEN_TYP}`)
  if (header.kid === undefined || header.kid.length === 0) throw invalid('a task token needs a "kid"')
  const taskId = text(claims['txn'], 'txn', MAX_TASK_ID_LENGTH)
  let subject: SpiffeId
  try {
    subject = SpiffeId.parse(text(claims['sub'], 'sub', 2048))
  } catch (err) {
    throw invalid('"sub" is not a valid SPIFFE ID', err)
  }
  if (claims['iss'] !== subject.trustDomain.idString())
    throw invalid('"iss" must be the trust domain of "sub"')
  const aud = claims['aud']
  const audiences = typeof aud === 'string' ? [aud] : aud
  if (
    !Array.isArray(audiences) ||
    audiences.length === 0 ||
    audiences.some((a) => typeof a !== 'string' || a === '')
  )
    throw invalid('"aud" must name at least one audience')
  const scopes = text(claims['scope'], 'scope', 8192)
    .split(' ')
    .filter((s) => s !== '')
  const tctx = object(claims['tctx'], 'tctx')
  const rctx = object(claims['rctx'], 'rctx')
  const parent = tctx['parent']
  if (parent !== undefined && typeof parent !== 'string') throw invalid('"tctx.parent" must be a task id')
  const approvedBy = tctx['approved_by']
  if (approvedBy !== undefined && typeof approvedBy !== 'string')
    throw invalid('"tctx.approved_by" must be text')
  const pid = rctx['pid']
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid)) throw invalid('"rctx.pid" must be an integer')
  return Object.freeze({
    taskId,
    subject,
    audiences: Object.freeze([...(audiences as string[])]),
    scopes: Object.freeze(scopes),
    requestingWorkload: text(claims['req_wl'], 'req_wl', 2048),
    purpose: text(tctx['purpose'], 'tctx.purpose', 1024),
    consent: text(tctx['consent'], 'tctx.consent', 64),
    ...(typeof approvedBy === 'string' && { approvedBy: text(approvedBy, 'tctx.approved_by', 2048) }),
    ...(typeof parent === 'string' && { parentTaskId: parent }),
    requester: Object.freeze({
      pid,
      exeSha256: typeof rctx['exe_sha256'] === 'string' ? rctx['exe_sha256'] : '',
      host: typeof rctx['host'] === 'string' ? rctx['host'] : '',
    }),
    issuedAtMs: time(claims['iat'], 'iat'),
    expiresAtMs: time(claims['exp'], 'exp'),
    jti: text(claims['jti'], 'jti', 256),
    claims,
    token,
    kid: header.kid,
    alg: header.alg,
  })
}

/** What to check beyond signature and times. */
export interface ValidateTaskTokenOptions {
  readonly nowMs: number
  /** The audience the verifier answers to: one of the token's `aud`; absent: not checked (the server, for a parent token). */
  readonly audience?: string
  /** Scopes the token must all hold. */
  readonly requiredScopes?: ReadonlyArray<string>
  /** Skew tolerated on `exp` and `iat`; default {@link DEFAULT_TASK_LEEWAY_MS}. */
  readonly leewayMs?: number
  /** Revoked credentials (an agent's feed): the task, its parent, its `jti` or its subject revoked → refused. */
  readonly revocations?: RevocationListSource | undefined
  /**
   * Task tokens whose signature verified before (a guard keeps one): a token whose `kid` still names
   * the key it verified with skips the signature check; everything else is checked every time.
   */
  readonly signatures?: VerifiedSignatures | undefined
}

/**
 * Validates a task token against the JWT bundle of its own trust domain: shape (see
 * {@link parseTaskTokenInsecure}), the `kid` in that bundle, the low-S signature, `exp`/`iat` with a
 * leeway, the audience, the required scopes, and the revocations when given.
 * @throws ERR_JWT_MALFORMED, ERR_JWT_ALG_UNSUPPORTED, ERR_TASK_TOKEN_INVALID, ERR_BUNDLE_NOT_FOUND,
 *   ERR_JWT_KEY_NOT_FOUND, ERR_JWT_SIGNATURE_INVALID, ERR_JWT_EXPIRED, ERR_JWT_NOT_YET_VALID,
 *   ERR_JWT_AUDIENCE_MISMATCH, ERR_TASK_SCOPE_MISSING, ERR_CREDENTIAL_REVOKED (the task or its parent
 *   ended, its `jti` or its subject revoked, when `revocations` is given)
 */
export async function validateTaskTokenAt(
  token: string,
  bundles: JwtBundleSource,
  opts: ValidateTaskTokenOptions,
): Promise<TaskToken> {
  const leewayMs = opts.leewayMs ?? DEFAULT_TASK_LEEWAY_MS
  const parsed = parseTaskTokenInsecure(token)
  const td = parsed.subject.trustDomain
  const bundle = bundles.getJwtBundleForTrustDomain(td)
  if (bundle === undefined || !bundle.trustDomain.equals(td))
    throw new IdentityError('ERR_BUNDLE_NOT_FOUND', `no JWT bundle for trust domain ${td.name}`)
  const authority = bundle.findAuthority(parsed.kid)
  if (authority === undefined)
    throw new IdentityError('ERR_JWT_KEY_NOT_FOUND', `no JWT authority "${parsed.kid}" for ${td.name}`)
  if (opts.signatures?.has(token, authority.key) !== true) {
    await verifyJws(token, parsed.alg as Parameters<typeof verifyJws>[1], authority.key, 'task token')
    opts.signatures?.add(token, authority.key)
  }
  if (parsed.expiresAtMs <= opts.nowMs - leewayMs)
    throw new IdentityError('ERR_JWT_EXPIRED', 'the task token has expired')
  if (parsed.issuedAtMs > opts.nowMs + leewayMs)
    throw new IdentityError('ERR_JWT_NOT_YET_VALID', 'the task token was issued in the future (iat)')
  if (opts.audience !== undefined && !parsed.audiences.includes(opts.audience))
    throw new IdentityError('ERR_JWT_AUDIENCE_MISMATCH', 'the task token is not for this audience')
  const missing = (opts.requiredScopes ?? []).filter((s) => !parsed.scopes.includes(s))
  if (missing.length > 0)
    throw new IdentityError(
      'ERR_TASK_SCOPE_MISSING',
      `the task token does not hold scope ${missing.join(', ')}`,
    )
  checkNotRevoked(opts.revocations, { kind: 'task', taskId: parsed.taskId })
  if (parsed.parentTaskId !== undefined)
    checkNotRevoked(opts.revocations, { kind: 'task', taskId: parsed.parentTaskId })
  const { subject: id, jti: jwtId, issuedAtMs } = parsed
  checkNotRevoked(opts.revocations, { kind: 'jwt', id, jwtId, issuedAtMs })
  const { kid: _kid, alg: _alg, ...task } = parsed
  return Object.freeze(task)
}

/** True when `err` says the token is not a well-formed task token (as opposed to invalid or expired). */
export function isMalformedTaskToken(err: unknown): boolean {
  return isIdentityError(err, 'ERR_JWT_MALFORMED') || isIdentityError(err, 'ERR_TASK_TOKEN_INVALID')
}

function text(value: unknown, name: string, max: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max)
    throw invalid(`"${name}" must be a string of 1 to ${max} characters`)
  return value
}

function object(value: unknown, name: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalid(`"${name}" must be an object`)
  return value as Record<string, unknown>
}

function time(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value))
    throw invalid(`"${name}" must be a NumericDate`)
  return value * 1000
}

function invalid(message: string, cause?: unknown): IdentityError {
  return new IdentityError('ERR_TASK_TOKEN_INVALID', message, { cause })
}
