import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { AuditCaller, AuditCode } from '../common/log/audit-log.js'
import { callerTokenFor } from './caller-token.js'
import type { Decision, EgressContext } from './egress-proxy.js'
import { decoderFor } from './route-forward.js'
import { callerHeaders } from './route-headers.js'
import { Scrubber } from './scrubber.js'

// A forward-proxy request to a Tessera gateway (an egress rule with "identity": {"attach": "caller"}):
// the caller's own JWT-SVID for the gateway's audience, attached by its launch relay, is checked and
// presented as `Authorization: Bearer`; the answer comes back scrubbed of it.

/** For a Tessera gateway: the caller's token for its audience, or the decision turned into a refusal. */
export async function withCallerToken(
  ctx: EgressContext,
  req: IncomingMessage,
  decision: Decision,
): Promise<{ decision: Decision; token?: string }> {
  if (!decision.allowed || decision.attachAudience === undefined) return { decision }
  const got = await callerTokenFor(req.headers, decision.attachAudience, decision.id, {
    jwtBundles: ctx.auth.jwtBundles,
    revocations: ctx.auth.revocations,
    nowMs: ctx.auth.clock.nowMs(),
  })
  if (got.ok) return { decision, token: got.token }
  return {
    decision: { allowed: false, status: 403, code: got.code, reason: got.reason, id: decision.id },
  }
}

/** Sends a gateway's answer back scrubbed of the attached token; audited as `call.forwarded`. */
export function answerAttached(
  ctx: EgressContext,
  req: IncomingMessage,
  res: ServerResponse,
  answer: IncomingMessage,
  call: { url: URL; token: string; decision: Decision & { allowed: true }; caller: AuditCaller },
): void {
  const scrubber = new Scrubber([call.token])
  const decoder = decoderFor(answer.headers['content-encoding'])
  const head = callerHeaders(answer.headers, scrubber, decoder !== undefined)
  let isScrubbed = head.isScrubbed
  let bytesOut = 0
  let code: AuditCode = 'OK'
  res.writeHead(answer.statusCode ?? 502, head.headers)
  const scrubbing = scrubber.stream(() => {
    isScrubbed = true
  })
  scrubbing.on('data', (chunk: Buffer) => {
    bytesOut += chunk.length
  })
  res.once('close', () =>
    ctx.audit.callForwarded({
      method: req.method ?? 'GET',
      host: call.url.host,
      path: call.url.pathname,
      route: 'egress',
      status: res.statusCode,
      bytesIn: Number(req.headers['content-length'] ?? 0),
      bytesOut,
      scrubbed: isScrubbed,
      via: call.decision.via,
      attached: 'caller',
      code,
      caller: call.caller,
      correlationId: call.decision.taskId,
    }),
  )
  const stages: Transform[] = [...(decoder === undefined ? [] : [decoder]), scrubbing]
  pipeline([answer, ...stages, res]).catch(() => {
    if (!res.writableFinished) code = 'ERR_UPSTREAM_UNAVAILABLE'
    res.destroy()
  })
}
