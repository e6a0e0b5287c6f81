import type { Command } from 'commander'
import type { ListAgentsRequest } from '../../common/gen/tessera/admin/v1/ListAgentsRequest.js'
import type { ListAgentsResponse__Output } from '../../common/gen/tessera/admin/v1/ListAgentsResponse.js'
import type { Agent__Output } from '../../common/gen/tessera/types/v1/Agent.js'
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

type AgentOptions = AdminOptions & { readonly spiffeId?: string }
type AgentVerb = 'GetAgent' | 'EvictAgent' | 'BanAgent'

/** `tessera agent list|show|evict|ban`. */
export function registerAgentCommands(program: Command): void {
  const agent = program.command('agent').description('manage attested agents')
  withAdminOptions(agent.command('list'))
    .description('list attested agents')
    .action(adminAction<AgentOptions>(listAgents))
  const verbs: ReadonlyArray<[string, AgentVerb, string]> = [
    ['show', 'GetAgent', 'show an attested agent'],
    ['evict', 'EvictAgent', 'delete an agent: it is cut off now and must attest again with a new token'],
    ['ban', 'BanAgent', 'ban an agent: it is cut off now and refused until evicted'],
  ]
  for (const [name, verb, description] of verbs) {
    withAdminOptions(agent.command(name))
      .description(description)
      .option('--spiffe-id <id>', "the agent's SPIFFE ID")
      .action(adminAction<AgentOptions>((admin, options, out) => actOnAgent(admin, { options, verb }, out)))
  }
}

async function listAgents(admin: AdminClients, _options: AgentOptions, out: Output): Promise<void> {
  const agents: Agent__Output[] = []
  const request: ListAgentsRequest = { page_size: 500, page_token: '' }
  do {
    const page = await callAdmin<ListAgentsResponse__Output>(admin, (o, r) =>
      admin.agents.ListAgents(request, o, r),
    )
    agents.push(...page.agents)
    request.page_token = page.next_page_token
  } while (request.page_token !== '')
  out.print({ agents }, ({ agents: list }) => {
    const count = list.length === 1 ? 'Found 1 attested agent' : `Found ${list.length} attested agents`
    return [count, ...list.map(formatAgent)].join('\n\n')
  })
}

async function actOnAgent(
  admin: AdminClients,
  action: { options: AgentOptions; verb: AgentVerb },
  out: Output,
): Promise<void> {
  const spiffeId = action.options.spiffeId
  if (spiffeId === undefined) throw new IdentityError('ERR_REQUEST_INVALID', '--spiffe-id is required')
  const agent = await callAdmin<Agent__Output>(admin, (o, r) =>
    admin.agents[action.verb]({ spiffe_id: spiffeId }, o, r),
  )
  const done = action.verb === 'EvictAgent' ? 'Evicted' : action.verb === 'BanAgent' ? 'Banned' : undefined
  out.print(agent, (a) => (done === undefined ? formatAgent(a) : `${done} agent ${a.spiffe_id}`))
}

/** One agent as `Label : value` lines. */
function formatAgent(a: Agent__Output): string {
  return formatFields([
    ['SPIFFE ID', a.spiffe_id],
    ['Attestation type', a.attestation_type],
    ['Serial number', a.x509_svid_serial_number || '-'],
    ['SVID expires at', formatTime(a.x509_svid_expires_at)],
    ['Banned', String(a.banned)],
    ...a.selectors.map((s) => ['Selector', `${s.type}:${s.value}`] as const),
    ['Attested at', formatTime(a.created_at)],
  ])
}
