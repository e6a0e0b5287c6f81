import { type handleUnaryCall, Metadata, type ServerUnaryCall } from '@grpc/grpc-js'
import type { Logger } from 'pino'
import { WARNING_TRAILER } from '../../common/grpc/admin-warnings.js'
import type { AuditCaller } from '../../common/log/audit-log.js'
import { IdentityError } from '../../lib/core/errors.js'
import { toServiceError } from '../../lib/grpc/status.js'

/** What every admin handler needs: a logger and who is calling. */
export interface HandlerKit {
  readonly log: Logger
  /**
   * The audited identity of the admitted admin behind a call: known at once on the admin socket,
   * looked up per call over mTLS (remote admin). A refusal is audited by the kit.
   * @throws ERR_PEER_UNAUTHORIZED
   */
  callerOf(call: AdminCall): AuditCaller | Promise<AuditCaller>
}

/** What {@link HandlerKit.callerOf} reads of a call (every grpc-js server call has it). */
export interface AdminCall {
  getPeer(): string
  getPath(): string
  getAuthContext(): { readonly sslPeerCertificate?: { readonly raw?: Buffer } } | null
}

/** A response with warnings for the caller, sent as {@link WARNING_TRAILER} trailers. */
export class WarnedResponse<Res> {
  constructor(
    readonly response: Res,
    readonly warnings: ReadonlyArray<string>,
  ) {}
}

function trailersOf(warnings: ReadonlyArray<string>): Metadata | undefined {
  if (warnings.length === 0) return undefined
  const trailers = new Metadata()
  for (const w of warnings) trailers.add(WARNING_TRAILER, w.replace(/[^\x20-\x7e]/g, '?'))
  return trailers
}

/**
 * A grpc-js unary handler around an async function. Every failure goes through `toServiceError`
 * (grpc-js never sees a raw Error); an unexpected one is logged here with its stack, the client
 * only learns INTERNAL.
 */
export function unary<Req, Res>(
  kit: HandlerKit,
  method: string,
  handle: (request: Req, caller: AuditCaller) => Promise<Res | WarnedResponse<Res>>,
): handleUnaryCall<Req, Res> {
  return (call: ServerUnaryCall<Req, Res>, callback) => {
    const started = performance.now()
    const run = async () => handle(call.request, await kit.callerOf(call))
    run().then(
      (answer) => {
        kit.log.debug({ method, durationMs: Math.round(performance.now() - started) }, 'Admin call served.')
        if (answer instanceof WarnedResponse) callback(null, answer.response, trailersOf(answer.warnings))
        else callback(null, answer)
      },
      (err: unknown) => {
        if (err instanceof IdentityError) kit.log.debug({ method, code: err.code }, 'Admin call refused.')
        else kit.log.error({ method, err }, 'Admin call failed.')
        callback(toServiceError(err))
      },
    )
  }
}
