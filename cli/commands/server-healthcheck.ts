import { credentials, type Metadata, type ServiceError } from '@grpc/grpc-js'
import type { Command } from 'commander'
import type { HealthCheckResponse__Output } from '../../common/gen/grpc/health/v1/HealthCheckResponse.js'
import { healthApi } from '../../common/grpc/protos.js'
import { type ErrorCode, IdentityError } from '../../lib/core/errors.js'
import { NOT_READY_CODE_KEY } from '../../server/health/server-health.js'
import { ADMIN_DEADLINE_MS, type AdminClients } from '../admin-client.js'
import { adminAction, type Output, withAdminOptions } from './admin-command.js'

/** The not-ready causes the server names in its health answer. */
const NOT_READY_CODES: ReadonlySet<string> = new Set<ErrorCode>(['ERR_DATASTORE_CORRUPT'])

interface Answer {
  readonly status: string
  readonly code: string | undefined
}

/** Asks the server's health service; the not-ready code comes in the trailer, after the answer. */
function checkHealth(socket: string): Promise<Answer> {
  const client = new (healthApi().grpc.health.v1.Health)(`unix://${socket}`, credentials.createInsecure())
  let response: HealthCheckResponse__Output | undefined
  return new Promise<Answer>((resolve, reject) => {
    const call = client.Check(
      { service: '' },
      { deadline: Date.now() + ADMIN_DEADLINE_MS },
      (err: ServiceError | null, res?: HealthCheckResponse__Output) => {
        if (err) reject(err)
        else response = res
      },
    )
    call.on('status', (s: { metadata: Metadata }) => {
      const code = s.metadata.get(NOT_READY_CODE_KEY)[0]
      if (response !== undefined)
        resolve({ status: String(response.status), code: typeof code === 'string' ? code : undefined })
    })
  }).finally(() => client.close())
}

async function serverHealthcheck(admin: AdminClients, _options: unknown, out: Output): Promise<void> {
  const answer = await checkHealth(admin.socket).catch((err: unknown) => {
    throw new IdentityError('ERR_DATASTORE_IO', `the server does not answer on ${admin.socket}`, {
      cause: err,
    })
  })
  if (answer.status !== 'SERVING') {
    const code = (NOT_READY_CODES.has(answer.code ?? '') ? answer.code : 'ERR_CA_NOT_READY') as ErrorCode
    throw new IdentityError(code, `the server is not ready (${answer.status}); its log says why`)
  }
  out.print({ healthy: true, socket: admin.socket }, () => 'Server is healthy.')
}

/** `tessera server healthcheck`: exit 0 when the server reports ready, else one line and exit 1. */
export function registerServerHealthcheck(server: Command): void {
  withAdminOptions(server.command('healthcheck'), { remote: false })
    .description('check that the server is ready, over its admin socket (exit 0), or say why not (exit 1)')
    .action(adminAction(serverHealthcheck))
}
