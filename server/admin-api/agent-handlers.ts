import type { AgentsHandlers } from '../../common/gen/tessera/admin/v1/Agents.js'
import type { AgentAdminService } from '../agents/agent-admin-service.js'
import { fromAgent, toPageRequest, toSpiffeId } from './convert.js'
import { type HandlerKit, unary } from './unary.js'

/** What the `Agents` handlers need. */
export interface AgentHandlerDeps extends HandlerKit {
  readonly agents: AgentAdminService
}

/** The `tessera.admin.v1.Agents` service: list, show, evict, ban. */
export function createAgentHandlers(deps: AgentHandlerDeps): AgentsHandlers {
  const { agents } = deps
  return {
    ListAgents: unary(deps, 'ListAgents', async (req) => {
      const filter = req.by_banned === undefined ? {} : { banned: req.by_banned }
      const page = await agents.list(filter, toPageRequest(req))
      return { agents: page.agents.map(fromAgent), next_page_token: page.nextPageToken ?? '' }
    }),
    GetAgent: unary(deps, 'GetAgent', async (req) =>
      fromAgent(await agents.fetch(toSpiffeId(req.spiffe_id, 'spiffe_id'))),
    ),
    EvictAgent: unary(deps, 'EvictAgent', async (req, caller) =>
      fromAgent(await agents.evict(toSpiffeId(req.spiffe_id, 'spiffe_id'), caller)),
    ),
    BanAgent: unary(deps, 'BanAgent', async (req, caller) =>
      fromAgent(await agents.ban(toSpiffeId(req.spiffe_id, 'spiffe_id'), caller)),
    ),
  }
}
