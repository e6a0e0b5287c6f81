import { existsSync } from 'node:fs'
import { status } from '@grpc/grpc-js'
import type { Command } from 'commander'
import { IdentityError } from '../../lib/core/errors.js'
import { WorkloadApiError } from '../../lib/workload/workload-api-error.js'
import { type WorkloadContext, withWorkloadOptions, workloadAction } from './workload-command.js'

/**
 * True when the call's outcome proves the agent answered: a bundle set, or PERMISSION_DENIED (an
 * agent that refuses this process an identity is alive and attesting).
 */
function isAgentAnswer(err: unknown): boolean {
  return err instanceof WorkloadApiError && err.status === status.PERMISSION_DENIED
}

async function healthcheck({ client, out }: WorkloadContext): Promise<void> {
  const endpoint = client.endpoint
  if (endpoint.transport === 'unix' && !existsSync(endpoint.path))
    throw new IdentityError(
      'ERR_WORKLOAD_API_UNAVAILABLE',
      `no Workload API socket at ${endpoint.path} (is the agent running?)`,
    )
  try {
    await client.fetchX509Bundles()
  } catch (err) {
    if (!isAgentAnswer(err)) throw err
  }
  out.print({ healthy: true, endpoint: endpoint.uri }, () => 'Agent is healthy.')
}

/** `tessera healthcheck`: exit 0 when the agent answers the Workload API, else one line and exit 1. */
export function registerHealthcheckCommand(program: Command): void {
  withWorkloadOptions(program.command('healthcheck'))
    .description('check that the agent answers the Workload API (exit 0) or say why not (exit 1)')
    .action(workloadAction(healthcheck))
}
