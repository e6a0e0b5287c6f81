import type { Command } from 'commander'
import type { CreateJoinTokenResponse__Output } from '../../common/gen/tessera/admin/v1/CreateJoinTokenResponse.js'
import { parseDurationMs } from '../../lib/core/duration.js'
import { IdentityError } from '../../lib/core/errors.js'
import { type AdminClients, callAdmin } from '../admin-client.js'
import {
  type AdminOptions,
  adminAction,
  formatFields,
  formatTime,
  type Output,
  withAdminOptions,
} from './admin-command.js'

type GenerateOptions = AdminOptions & { readonly spiffeId?: string; readonly ttl?: string }

/** `tessera token generate`: a join token for one agent attestation. */
export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description('manage join tokens')
  withAdminOptions(token.command('generate'))
    .description('generate a join token an agent can attest with once')
    .option('--spiffe-id <id>', 'an alias SPIFFE ID for the agent that uses the token')
    .option('--ttl <duration>', 'how long the token is valid, e.g. 10m (default: the server setting)')
    .action(adminAction<GenerateOptions>(generateToken))
}

/** `--ttl` in whole seconds (0 = server default). @throws ERR_TTL_INVALID */
function toTtlSeconds(text: string | undefined): number {
  if (text === undefined) return 0
  const ms = parseDurationMs(text)
  if (ms % 1000 !== 0) throw new IdentityError('ERR_TTL_INVALID', '--ttl must be whole seconds')
  return ms / 1000
}

async function generateToken(admin: AdminClients, options: GenerateOptions, out: Output): Promise<void> {
  const request = { ttl: toTtlSeconds(options.ttl), alias_spiffe_id: options.spiffeId ?? '' }
  const created = await callAdmin<CreateJoinTokenResponse__Output>(admin, (o, r) =>
    admin.joinTokens.CreateJoinToken(request, o, r),
  )
  out.print(created, (t) =>
    formatFields([
      ['Token', t.token],
      ['Agent SPIFFE ID', t.agent_spiffe_id],
      ...(request.alias_spiffe_id === '' ? [] : [['Alias SPIFFE ID', request.alias_spiffe_id] as const]),
      ['Expires at', formatTime(t.expires_at)],
    ]),
  )
}
