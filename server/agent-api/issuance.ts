import { createPublicKey, type KeyObject } from 'node:crypto'
import type { handleUnaryCall } from '@grpc/grpc-js'
import type { BatchNewX509SvidRequest__Output } from '../../common/gen/tessera/agent/v1/BatchNewX509SvidRequest.js'
import type { BatchNewX509SvidResponse } from '../../common/gen/tessera/agent/v1/BatchNewX509SvidResponse.js'
import type { NewJwtSvidRequest__Output } from '../../common/gen/tessera/agent/v1/NewJwtSvidRequest.js'
import type { NewJwtSvidResponse } from '../../common/gen/tessera/agent/v1/NewJwtSvidResponse.js'
import type { NewWitSvidRequest__Output } from '../../common/gen/tessera/agent/v1/NewWitSvidRequest.js'
import type { NewWitSvidResponse } from '../../common/gen/tessera/agent/v1/NewWitSvidResponse.js'
import { OK_STATUS, statusToProto, svidToProto } from '../../common/grpc/agent-api-convert.js'
import type { AuditCaller } from '../../common/log/audit-log.js'
import { IdentityError } from '../../lib/core/errors.js'
import { mintJwtSvid } from '../../lib/core/jwt/jwt-svid-mint.js'
import type { RegistrationEntry } from '../../lib/core/registration-entry.js'
import { mintWitSvid } from '../../lib/core/wit/wit-svid.js'
import { signX509SvidFromCsr } from '../ca/svid-signer.js'
import type { X509Ca } from '../ca/x509-ca.js'
import type { AuthorizedSet } from '../registration/authorized-entries.js'
import type { AuthenticatedAgent } from './agent-auth.js'
import { type AgentApiDeps, csrBytes, logFailure, unaryHandler } from './handler.js'
import { readSerialHex } from './serial.js'

/** Most CSRs one BatchNewX509Svid call may carry. */
export const MAX_BATCH_SIZE = 500
/** Most audiences one JWT-SVID may name, and the longest audience. */
export const MAX_AUDIENCES = 32
export const MAX_AUDIENCE_LENGTH = 1024

type BatchParam = BatchNewX509SvidRequest__Output['params'][number]
type BatchResult = NonNullable<BatchNewX509SvidResponse['results']>[number]

/**
 * BatchNewX509Svid: one X509-SVID per CSR, each for an entry in the agent's authorized set (else that
 * item alone fails with PERMISSION_DENIED and is audited), with the entry's TTL (or the server
 * default) and DNS names. Items fail independently.
 */
export function batchNewX509SvidHandler(
  deps: AgentApiDeps,
): handleUnaryCall<BatchNewX509SvidRequest__Output, BatchNewX509SvidResponse> {
  return unaryHandler(deps, 'BatchNewX509Svid', async (call) => {
    const agent = await deps.auth.authenticate(call, 'BatchNewX509Svid')
    const params = call.request.params
    if (params.length > MAX_BATCH_SIZE)
      throw new IdentityError('ERR_REQUEST_TOO_LARGE', `at most ${MAX_BATCH_SIZE} CSRs per call`)
    const set = await deps.authorized.forAgent(agent.id)
    const ca = deps.ctx.rotator.active().x509Ca
    const results: BatchResult[] = []
    for (const param of params) results.push(await signOne(deps, { agent, set, ca, param }))
    return { results }
  })
}

/** NewJwtSvid: a JWT-SVID for an authorized entry, signed by the active JWT key and capped at its expiry. */
export function newJwtSvidHandler(
  deps: AgentApiDeps,
): handleUnaryCall<NewJwtSvidRequest__Output, NewJwtSvidResponse> {
  return unaryHandler(deps, 'NewJwtSvid', async (call) => {
    const agent = await deps.auth.authenticate(call, 'NewJwtSvid')
    const audience = checkedAudience(call.request.audience)
    const set = await deps.authorized.forAgent(agent.id)
    const entry = await authorizedEntry(deps, { agent, set, entryId: call.request.entry_id, kind: 'jwt' })
    await deps.ctx.revocations.waitUntilIssuable(entry.spiffeId)
    const key = deps.ctx.rotator.active().jwtKey
    const ttlMs = entry.jwtSvidTtlMs || deps.ctx.settings.defaultJwtSvidTtlMs
    const token = await mintJwtSvid({
      id: entry.spiffeId,
      audience,
      key: { kid: key.kid, privateKey: key.privateKey },
      nowMs: deps.ctx.clock.nowMs(),
      ttlMs,
      expiresAtCapMs: key.notAfterMs,
      ...(deps.ctx.settings.jwtIssuer === undefined ? {} : { issuer: deps.ctx.settings.jwtIssuer }),
    })
    return issuedToken(deps, { agent, entry, kind: 'jwt', token, audience })
  })
}

/**
 * NewWitSvid: a WIT-SVID for an authorized entry, binding the workload public key the agent sent
 * (its private half never leaves the agent's host), signed by the active WIT key, with the entry's
 * JWT TTL (or the server default) capped at that key's expiry.
 */
export function newWitSvidHandler(
  deps: AgentApiDeps,
): handleUnaryCall<NewWitSvidRequest__Output, NewWitSvidResponse> {
  return unaryHandler(deps, 'NewWitSvid', async (call) => {
    const agent = await deps.auth.authenticate(call, 'NewWitSvid')
    const workloadKey = workloadPublicKey(call.request.public_key)
    const set = await deps.authorized.forAgent(agent.id)
    const entry = await authorizedEntry(deps, { agent, set, entryId: call.request.entry_id, kind: 'wit' })
    const key = deps.ctx.rotator.active().witKey
    if (key === undefined)
      throw new IdentityError(
        'ERR_CA_NOT_READY',
        'no WIT signing key yet: WIT-SVIDs start with the next key rotation',
      )
    const ttlMs = entry.jwtSvidTtlMs || deps.ctx.settings.defaultJwtSvidTtlMs
    const token = await mintWitSvid({
      id: entry.spiffeId,
      workloadKey,
      key: { kid: key.kid, privateKey: key.privateKey },
      nowMs: deps.ctx.clock.nowMs(),
      ttlMs,
      expiresAtCapMs: key.notAfterMs,
    })
    return issuedToken(deps, { agent, entry, kind: 'wit', token })
  })
}

/** @throws ERR_KEY_MALFORMED unless `der` is an EC or RSA SubjectPublicKeyInfo */
function workloadPublicKey(der: Buffer | Uint8Array | undefined): KeyObject {
  if (der === undefined || der.length === 0 || der.length > 2048)
    throw new IdentityError(
      'ERR_KEY_MALFORMED',
      'the workload public key must be 1 to 2048 bytes of SPKI DER',
    )
  try {
    const key = createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' })
    if (key.asymmetricKeyType !== 'ec' && key.asymmetricKeyType !== 'rsa') throw new Error('not EC or RSA')
    return key
  } catch (err) {
    throw new IdentityError('ERR_KEY_MALFORMED', 'the workload public key is not an EC or RSA SPKI', {
      cause: err,
    })
  }
}

async function signOne(
  deps: AgentApiDeps,
  item: { agent: AuthenticatedAgent; set: AuthorizedSet; ca: X509Ca; param: BatchParam },
): Promise<BatchResult> {
  const { agent, set, ca, param } = item
  try {
    const entry = await authorizedEntry(deps, { agent, set, entryId: param.entry_id, kind: 'x509' })
    const ttlMs = entry.x509SvidTtlMs || deps.ctx.settings.defaultX509SvidTtlMs
    await deps.ctx.revocations.waitUntilIssuable(entry.spiffeId)
    const leaf = await signX509SvidFromCsr(ca, {
      csrDer: csrBytes(param.csr),
      id: entry.spiffeId,
      dnsNames: entry.dnsNames,
      ttlMs,
      nowMs: deps.ctx.clock.nowMs(),
    })
    deps.ctx.audit.svidIssued({
      spiffeId: entry.spiffeId.toString(),
      kind: 'x509',
      serial: readSerialHex(leaf.der),
      ttlMs,
      entryId: entry.id,
      caller: agent.caller,
    })
    return { status: OK_STATUS, svid: svidToProto(entry.spiffeId, [leaf.der], leaf.notAfterMs) }
  } catch (err) {
    logFailure(deps.log, 'BatchNewX509Svid', err)
    return { status: statusToProto(err) }
  }
}

/**
 * The entry `entryId` if the agent is authorized for it; otherwise audits the denial (with the SPIFFE
 * ID asked for, when the entry exists at all) and throws.
 * @throws ERR_AGENT_UNAUTHORIZED
 */
export async function authorizedEntry(
  deps: AgentApiDeps,
  ask: {
    agent: AuthenticatedAgent
    set: AuthorizedSet
    entryId: string
    kind: 'x509' | 'jwt' | 'wit' | 'task'
  },
): Promise<RegistrationEntry> {
  const entry = ask.set.byId.get(ask.entryId)
  if (entry) return entry
  const asked = ask.entryId
    ? await deps.ctx.datastore.entries.fetch(ask.entryId).catch(() => undefined)
    : undefined
  const reason = 'the entry is not authorized for this agent'
  const caller: AuditCaller = ask.agent.caller
  deps.ctx.audit.issuanceDenied({
    spiffeId: asked?.spiffeId.toString(),
    kind: ask.kind,
    code: 'ERR_AGENT_UNAUTHORIZED',
    reason: `${reason} (entry ${ask.entryId.slice(0, 64) || 'none'})`,
    caller,
  })
  throw new IdentityError('ERR_AGENT_UNAUTHORIZED', reason)
}

/** @throws ERR_REQUEST_INVALID */
function checkedAudience(audience: ReadonlyArray<string>): string[] {
  if (audience.length === 0)
    throw new IdentityError('ERR_REQUEST_INVALID', 'at least one audience is required')
  if (audience.length > MAX_AUDIENCES)
    throw new IdentityError('ERR_REQUEST_INVALID', `at most ${MAX_AUDIENCES} audiences`)
  if (audience.some((a) => a.length === 0 || a.length > MAX_AUDIENCE_LENGTH))
    throw new IdentityError(
      'ERR_REQUEST_INVALID',
      `every audience must be 1 to ${MAX_AUDIENCE_LENGTH} characters`,
    )
  return [...audience]
}

/** `iat` and `exp` of a token this server just minted. */
export function timesOf(token: string): { iat: number; exp: number } {
  const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
    iat: number
    exp: number
  }
  return { iat: payload.iat, exp: payload.exp }
}

interface IssuedToken {
  readonly agent: AuthenticatedAgent
  readonly entry: RegistrationEntry
  readonly kind: 'jwt' | 'wit'
  readonly token: string
  readonly audience?: string[]
}

/** Audits a token just minted for an entry and gives the agent's answer: the token and its times. */
function issuedToken(deps: AgentApiDeps, issued: IssuedToken) {
  const { agent, entry, kind, token, audience } = issued
  const { iat, exp } = timesOf(token)
  deps.ctx.audit.svidIssued({
    spiffeId: entry.spiffeId.toString(),
    kind,
    ttlMs: (exp - iat) * 1000,
    ...(audience !== undefined && { audience }),
    entryId: entry.id,
    caller: agent.caller,
  })
  return { token, spiffe_id: entry.spiffeId.toString(), expires_at: exp, issued_at: iat }
}
