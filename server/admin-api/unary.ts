import type { handleUnaryCall, ServerUnaryCall } from '@grpc/grpc-js'
import type { Logger } from 'pino'
import { IdentityError } from '../../lib/core/errors.js'
import { toServiceError } from '../../lib/grpc/status.js'
import type { AuditCaller } from '../../lib/log/audit-log.js'

/** What every admin handler needs: a logger and who is calling. */
export interface HandlerKit {
  readonly log: Logger
  /** The audited identity of the admitted admin behind a call. @throws ERR_PEER_UNAUTHORIZED */
  callerOf(call: { getPeer(): string }): AuditCaller
}

/**
 * A grpc-js unary handler around an async function. Every failure goes through `toServiceError`
 * (grpc-js never sees a raw Error); an unexpected one is logged here with its stack, the client
 * only learns INTERNAL.
 */
export function unary<Req, Res>(
  kit: HandlerKit,
  method: string,
  handle: (request: Req, caller: AuditCaller) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  return (call: ServerUnaryCall<Req, Res>, callback) => {
    const started = performance.now()
    const run = async () => handle(call.request, kit.callerOf(call))
    run().then(
      (response) => {
        kit.log.debug({ method, durationMs: Math.round(performance.now() - started) }, 'Admin call served.')
        callback(null, response)
      },
      (err: unknown) => {
        if (err instanceof IdentityError) kit.log.debug({ method, code: err.code }, 'Admin call refused.')
        else kit.log.error({ method, err }, 'Admin call failed.')
        callback(toServiceError(err))
      },
    )
  }
}
