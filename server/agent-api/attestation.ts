import type { handleUnaryCall, ServerUnaryCall } from '@grpc/grpc-js'
import type { AttestAgentRequest__Output } from '../../common/gen/tessera/agent/v1/AttestAgentRequest.js'
import type { AttestAgentResponse } from '../../common/gen/tessera/agent/v1/AttestAgentResponse.js'
import type { RenewAgentRequest__Output } from '../../common/gen/tessera/agent/v1/RenewAgentRequest.js'
import type { RenewAgentResponse } from '../../common/gen/tessera/agent/v1/RenewAgentResponse.js'
import { bundleToProto, svidToProto } from '../../common/grpc/agent-api-convert.js'
import { type AuditCaller, fingerprintToken } from '../../common/log/audit-log.js'
import { IdentityError } from '../../lib/core/errors.js'
import type { SpiffeId } from '../../lib/core/spiffe-id.js'
import { parseCsr, verifyCsrSignature } from '../../lib/core/x509/csr.js'
import { agentIdForJoinToken } from '../agents/agent-id.js'
import { signX509SvidFromCsr } from '../ca/svid-signer.js'
import type { ServerContext } from '../context.js'
import { auditedCommit } from '../registration/audited-commit.js'
import { type AgentApiDeps, csrBytes, unaryHandler } from './handler.js'
import { readSerialHex } from './serial.js'

/** The attestation type recorded for join-token agents. */
export const JOIN_TOKEN_ATTESTATION = 'join_token'
/** Longest join token accepted. */
export const MAX_JOIN_TOKEN_LENGTH = 256

/** An agent SVID just signed. */
interface IssuedAgentSvid {
  readonly der: Buffer
  readonly serialHex: string
  readonly notAfterMs: number
}

/**
 * AttestAgent: a join token works once. The CSR is checked before the token is consumed (a bad
 * request does not burn it); the token is consumed atomically, so of two concurrent attempts one
 * wins. The agent ID derives from the token; its SVID has the agent SVID TTL.
 */
export function attestAgentHandler(
  deps: AgentApiDeps,
): handleUnaryCall<AttestAgentRequest__Output, AttestAgentResponse> {
  return unaryHandler(deps, 'AttestAgent', (call) => attestAgent(deps.ctx, call))
}

/** RenewAgent: a fresh agent SVID for a new key; the previous SVID is refused from then on. */
export function renewAgentHandler(
  deps: AgentApiDeps,
): handleUnaryCall<RenewAgentRequest__Output, RenewAgentResponse> {
  return unaryHandler(deps, 'RenewAgent', async (call) => {
    const agent = await deps.auth.authenticate(call, 'RenewAgent')
    const csrDer = checkedCsr(call.request.csr)
    const issued = await issueAgentSvid(deps.ctx, csrDer, agent.id)
    // Audited before the new serial commits (DESIGN §7): on a full disk, renewed and audited, or neither.
    const hooks = auditedCommit(deps.ctx.auditJournal, () =>
      deps.ctx.audit.svidIssued({
        spiffeId: agent.id.toString(),
        kind: 'x509',
        serial: issued.serialHex,
        ttlMs: deps.ctx.settings.agentSvidTtlMs,
        caller: agent.caller,
      }),
    )
    const changes = { serialHex: issued.serialHex, expiresAtMs: issued.notAfterMs }
    await deps.ctx.datastore.agents.update(agent.id, changes, hooks)
    return { svid: svidToProto(agent.id, [issued.der], issued.notAfterMs) }
  })
}

async function attestAgent(
  ctx: ServerContext,
  call: ServerUnaryCall<AttestAgentRequest__Output, AttestAgentResponse>,
): Promise<AttestAgentResponse> {
  const caller: AuditCaller = { kind: 'remote', address: call.getPeer() }
  const token = checkedToken(call.request.join_token)
  const csrDer = checkedCsr(call.request.csr)
  const tokenId = fingerprintToken(token)
  const consumed = await ctx.datastore.joinTokens.consume(token, ctx.clock.nowMs())
  if (!consumed) {
    ctx.audit.tokenUsed({ tokenId, caller, code: 'ERR_JOIN_TOKEN_INVALID' })
    throw new IdentityError('ERR_JOIN_TOKEN_INVALID', 'the join token is unknown, expired or already used')
  }
  const agentId = agentIdForJoinToken(ctx.trustDomain, token)
  const existing = await ctx.datastore.agents.fetch(agentId)
  if (existing?.banned) {
    ctx.audit.tokenUsed({ tokenId, agentId: agentId.toString(), caller, code: 'ERR_AGENT_BANNED' })
    throw new IdentityError('ERR_AGENT_BANNED', 'the agent is banned')
  }
  const issued = await issueAgentSvid(ctx, csrDer, agentId)
  const fields = { serialHex: issued.serialHex, expiresAtMs: issued.notAfterMs }
  // The agent's record commits only once its attestation is audited (DESIGN §7). The token was
  // consumed before, in its own statement: if this fails (a full disk), the token stays used.
  const hooks = auditedCommit(ctx.auditJournal, () => {
    ctx.audit.tokenUsed({ tokenId, agentId: agentId.toString(), caller })
    ctx.audit.agentAttested({
      agentId: agentId.toString(),
      attestor: JOIN_TOKEN_ATTESTATION,
      serial: issued.serialHex,
      caller,
    })
  })
  if (existing) await ctx.datastore.agents.update(agentId, fields, hooks)
  else
    await ctx.datastore.agents.create(
      { spiffeId: agentId, attestationType: JOIN_TOKEN_ATTESTATION, banned: false, selectors: [], ...fields },
      hooks,
    )
  return {
    svid: svidToProto(agentId, [issued.der], issued.notAfterMs),
    bundle: bundleToProto(ctx.bundles.own()),
  }
}

/** @throws ERR_REQUEST_INVALID when missing, ERR_REQUEST_TOO_LARGE when over {@link MAX_JOIN_TOKEN_LENGTH} */
function checkedToken(token: string | undefined): string {
  if (!token) throw new IdentityError('ERR_REQUEST_INVALID', 'a join token is required')
  if (token.length > MAX_JOIN_TOKEN_LENGTH)
    throw new IdentityError('ERR_REQUEST_TOO_LARGE', 'the join token is too long')
  return token
}

/** The CSR, parsed and its signature verified. @throws ERR_REQUEST_*, ERR_CSR_MALFORMED, ERR_CSR_SIGNATURE_INVALID */
function checkedCsr(csr: Buffer | undefined): Buffer {
  const der = csrBytes(csr)
  verifyCsrSignature(parseCsr(der))
  return der
}

/** Signs the agent's SVID with the active CA. */
async function issueAgentSvid(
  ctx: ServerContext,
  csrDer: Buffer,
  agentId: SpiffeId,
): Promise<IssuedAgentSvid> {
  const leaf = await signX509SvidFromCsr(ctx.rotator.active().x509Ca, {
    csrDer,
    id: agentId,
    ttlMs: ctx.settings.agentSvidTtlMs,
    nowMs: ctx.clock.nowMs(),
  })
  return { der: leaf.der, serialHex: readSerialHex(leaf.der), notAfterMs: leaf.notAfterMs }
}
