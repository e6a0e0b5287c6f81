import type { handleUnaryCall, ServerUnaryCall, ServiceError } from '@grpc/grpc-js'
import type { Logger } from 'pino'
import { IdentityError } from '../../lib/core/errors.js'
import { toServiceError } from '../../lib/grpc/status.js'
import type { ServerContext } from '../context.js'
import type { AuthorizedEntries } from '../registration/authorized-entries.js'
import type { AgentAuthenticator } from './agent-auth.js'

/** What every agent API handler needs. */
export interface AgentApiDeps {
  readonly ctx: ServerContext
  readonly auth: AgentAuthenticator
  readonly authorized: AuthorizedEntries
  /** The `agent-api` component logger. */
  readonly log: Logger
}

/** Largest CSR accepted (an RSA-4096 request is about 1.2 KiB). */
export const MAX_CSR_BYTES = 8 * 1024

/**
 * Adapts an async use case to a grpc-js unary handler: the result is sent, a failure goes through the
 * one error table (`toServiceError`) and to the log — a foreign error only ever as INTERNAL.
 */
export function unaryHandler<Req, Res>(
  deps: Pick<AgentApiDeps, 'log'>,
  method: string,
  run: (call: ServerUnaryCall<Req, Res>) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    run(call).then(
      (res) => callback(null, res),
      (err: unknown) => {
        logFailure(deps.log, method, err)
        callback(toServiceError(err) as ServiceError)
      },
    )
  }
}

/** Refusals are routine (`debug`); anything else is a bug or an outage (`error`). */
export function logFailure(log: Logger, method: string, err: unknown): void {
  if (err instanceof IdentityError) log.debug({ method, code: err.code, err }, 'Agent API call failed.')
  else log.error({ method, err }, 'Agent API call failed unexpectedly.')
}

/**
 * The CSR bytes of a request, bounded in size.
 * @throws ERR_REQUEST_INVALID when empty, ERR_REQUEST_TOO_LARGE when over {@link MAX_CSR_BYTES}
 */
export function csrBytes(csr: Buffer | undefined): Buffer {
  if (!csr || csr.length === 0) throw new IdentityError('ERR_REQUEST_INVALID', 'a CSR is required')
  if (csr.length > MAX_CSR_BYTES) throw new IdentityError('ERR_REQUEST_TOO_LARGE', 'the CSR is too large')
  return csr
}
