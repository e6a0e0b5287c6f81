import type { AuditJournal } from '../../common/log/audit-file.js'
import type { AuditCaller, AuditLog } from '../../common/log/audit-log.js'
import { IdentityError } from '../../lib/core/errors.js'
import type { SpiffeId } from '../../lib/core/spiffe-id.js'
import type { AgentFilter, AgentPage, AgentStore, AttestedAgent, PageRequest } from '../datastore/ports.js'
import type { ServerEvents } from '../events.js'
import { auditedCommit } from '../registration/audited-commit.js'

/** What the agent admin service needs. */
export interface AgentAdminServiceDeps {
  readonly agents: AgentStore
  readonly audit: AuditLog
  /** The audit file under `audit`, if any: an eviction or ban is fsynced there before it commits. */
  readonly auditJournal?: AuditJournal | undefined
  readonly events: ServerEvents
}

/**
 * The admin's view of attested agents: list and show them, evict one (its record is deleted; it
 * may attest again with a new join token), or ban one (it is refused until evicted). Both cut the
 * agent off at once: `agent-removed` ends its streams, and both are audited.
 */
export class AgentAdminService {
  readonly #deps: AgentAdminServiceDeps

  constructor(deps: AgentAdminServiceDeps) {
    this.#deps = deps
  }

  /**
   * One page of agents, ordered by SPIFFE ID.
   * @throws ERR_PAGE_TOKEN_INVALID, ERR_REQUEST_INVALID (page size)
   */
  list(filter: AgentFilter, page: PageRequest): Promise<AgentPage> {
    return this.#deps.agents.list(filter, page)
  }

  /**
   * The agent with this ID.
   * @throws ERR_AGENT_NOT_FOUND
   */
  async fetch(agentId: SpiffeId): Promise<AttestedAgent> {
    const agent = await this.#deps.agents.fetch(agentId)
    if (agent === undefined) throw new IdentityError('ERR_AGENT_NOT_FOUND', 'no attested agent has this ID')
    return agent
  }

  /**
   * Deletes the agent's record and cuts it off; returns the record as it was. Audited before it
   * commits (see `auditedCommit`).
   * @throws ERR_AGENT_NOT_FOUND, ERR_AUDIT_UNAVAILABLE, ERR_DATASTORE_IO
   */
  async evict(agentId: SpiffeId, caller: AuditCaller): Promise<AttestedAgent> {
    const { audit, auditJournal } = this.#deps
    const hooks = auditedCommit(auditJournal, () =>
      audit.agentEvicted({ agentId: agentId.toString(), caller }),
    )
    const agent = await this.#deps.agents.delete(agentId, hooks)
    this.#deps.events.emit('agent-removed', agentId.toString())
    return agent
  }

  /**
   * Marks the agent banned (its serial is cleared, as SPIRE does) and cuts it off. Audited before it
   * commits (see `auditedCommit`).
   * @throws ERR_AGENT_NOT_FOUND, ERR_AUDIT_UNAVAILABLE, ERR_DATASTORE_IO
   */
  async ban(agentId: SpiffeId, caller: AuditCaller): Promise<AttestedAgent> {
    const { audit, auditJournal } = this.#deps
    const hooks = auditedCommit(auditJournal, () =>
      audit.agentBanned({ agentId: agentId.toString(), caller }),
    )
    const agent = await this.#deps.agents.update(agentId, { banned: true, serialHex: '' }, hooks)
    this.#deps.events.emit('agent-removed', agentId.toString())
    return agent
  }
}
