import type Database from 'better-sqlite3'
import type { Clock } from '../../../lib/core/clock.js'
import { IdentityError } from '../../../lib/core/errors.js'
import { normalizeSelectors, Selector } from '../../../lib/core/selector.js'
import { SpiffeId } from '../../../lib/core/spiffe-id.js'
import type {
  AgentChanges,
  AgentFields,
  AgentFilter,
  AgentPage,
  AgentStore,
  AttestedAgent,
  CommitHooks,
  PageRequest,
} from '../ports.js'
import { guard, isPrimaryKeyViolation, readRow } from './guard.js'
import { hookedTransaction } from './hooked-transaction.js'
import { decodePageToken, encodePageToken, resolvePageSize } from './page-token.js'

interface AgentRow {
  readonly spiffe_id: string
  readonly attestation_type: string
  readonly serial_hex: string
  readonly expires_at_ms: number
  readonly banned: number
  /** `["type:value", …]` */
  readonly selectors_json: string
  readonly created_at_ms: number
  readonly updated_at_ms: number
}

const COLUMNS = `spiffe_id, attestation_type, serial_hex, expires_at_ms, banned, selectors_json,
  created_at_ms, updated_at_ms`

/** Lists with an optional cursor and banned filter: `?` cursors are bound as NULL when absent. */
const LIST = `SELECT ${COLUMNS} FROM attested_agents
  WHERE (@after IS NULL OR spiffe_id > @after) AND (@banned IS NULL OR banned = @banned)
  ORDER BY spiffe_id LIMIT @limit`

function rowToAgent(row: AgentRow): AttestedAgent {
  return readRow(`agent ${row.spiffe_id}`, () => {
    const texts: unknown = JSON.parse(row.selectors_json)
    if (!Array.isArray(texts)) throw new Error('agent selectors are not an array')
    return Object.freeze({
      spiffeId: SpiffeId.parse(row.spiffe_id),
      attestationType: row.attestation_type,
      serialHex: row.serial_hex,
      expiresAtMs: row.expires_at_ms,
      banned: row.banned !== 0,
      createdAtMs: row.created_at_ms,
      updatedAtMs: row.updated_at_ms,
      selectors: Object.freeze(texts.map((t) => Selector.parse(String(t)))),
    })
  })
}

const SERIAL_HEX = /^[0-9a-f]{0,64}$/

function findAgentProblem(agent: AttestedAgent): string | undefined {
  if (typeof agent.attestationType !== 'string' || agent.attestationType.length === 0) {
    return 'an agent needs an attestation type'
  }
  if (typeof agent.serialHex !== 'string' || !SERIAL_HEX.test(agent.serialHex)) {
    return 'an agent SVID serial must be lowercase hex'
  }
  if (!Number.isSafeInteger(agent.expiresAtMs)) return 'an agent needs an SVID expiry time'
  if (typeof agent.banned !== 'boolean') return 'banned must be true or false'
  return undefined
}

/**
 * The row of an agent.
 * @throws ERR_REQUEST_INVALID when a field is malformed
 */
function toRow(agent: AttestedAgent): AgentRow {
  const problem = findAgentProblem(agent)
  if (problem !== undefined) throw new IdentityError('ERR_REQUEST_INVALID', problem)
  return {
    spiffe_id: agent.spiffeId.toString(),
    attestation_type: agent.attestationType,
    serial_hex: agent.serialHex,
    expires_at_ms: agent.expiresAtMs,
    banned: agent.banned ? 1 : 0,
    selectors_json: JSON.stringify(normalizeSelectors(agent.selectors).map((s) => s.toString())),
    created_at_ms: agent.createdAtMs,
    updated_at_ms: agent.updatedAtMs,
  }
}

function notFound(spiffeId: SpiffeId): IdentityError {
  return new IdentityError('ERR_AGENT_NOT_FOUND', `no attested agent ${spiffeId.toString()}`)
}

function isAgentKey(key: string): boolean {
  try {
    SpiffeId.parse(key)
    return true
  } catch {
    return false
  }
}

/** The {@link AgentStore} on SQLite: one row per attested agent, its selectors as a JSON list. */
export class SqliteAgentStore implements AgentStore {
  readonly #clock: Clock
  readonly #insert: Database.Statement<[AgentRow]>
  readonly #replace: Database.Statement<[AgentRow]>
  readonly #fetch: Database.Statement<[string], AgentRow>
  readonly #list: Database.Statement<[Record<string, unknown>], AgentRow>
  readonly #count: Database.Statement<[Record<string, unknown>], number>
  readonly #delete: Database.Statement<[string], AgentRow>
  readonly #update: (
    hooks: CommitHooks<AttestedAgent> | undefined,
    spiffeId: SpiffeId,
    changes: AgentChanges,
  ) => AttestedAgent
  readonly #remove: (hooks: CommitHooks<AttestedAgent> | undefined, spiffeId: SpiffeId) => AttestedAgent
  readonly #create: (hooks: CommitHooks<AttestedAgent> | undefined, row: AgentRow) => AttestedAgent

  constructor(db: Database.Database, clock: Clock) {
    this.#clock = clock
    this.#insert = db.prepare(`INSERT INTO attested_agents (${COLUMNS}) VALUES (@spiffe_id, @attestation_type,
      @serial_hex, @expires_at_ms, @banned, @selectors_json, @created_at_ms, @updated_at_ms)`)
    this.#replace = db.prepare(`UPDATE attested_agents SET attestation_type = @attestation_type,
      serial_hex = @serial_hex, expires_at_ms = @expires_at_ms, banned = @banned,
      selectors_json = @selectors_json, updated_at_ms = @updated_at_ms WHERE spiffe_id = @spiffe_id`)
    this.#fetch = db.prepare(`SELECT ${COLUMNS} FROM attested_agents WHERE spiffe_id = ?`)
    this.#list = db.prepare(LIST)
    this.#count = db
      .prepare<[Record<string, unknown>], number>(
        'SELECT count(*) FROM attested_agents WHERE (@banned IS NULL OR banned = @banned)',
      )
      .pluck()
    this.#delete = db.prepare(`DELETE FROM attested_agents WHERE spiffe_id = ? RETURNING ${COLUMNS}`)
    this.#update = hookedTransaction(db, (id: SpiffeId, changes: AgentChanges) =>
      this.#updateRow(id, changes),
    )
    this.#create = hookedTransaction(db, (row: AgentRow) => {
      this.#insert.run(row)
      return rowToAgent(row)
    })
    this.#remove = hookedTransaction(db, (id: SpiffeId) => {
      const row = this.#delete.get(id.toString())
      if (row === undefined) throw notFound(id)
      return rowToAgent(row)
    })
  }

  async create(fields: AgentFields, hooks?: CommitHooks<AttestedAgent>): Promise<AttestedAgent> {
    const nowMs = this.#clock.nowMs()
    const agent: AttestedAgent = { ...fields, createdAtMs: nowMs, updatedAtMs: nowMs }
    const row = toRow(agent)
    return guard('create an agent', () => {
      try {
        return this.#create(hooks, row)
      } catch (err) {
        if (!isPrimaryKeyViolation(err)) throw err
        throw new IdentityError('ERR_AGENT_EXISTS', 'an agent with this SPIFFE ID is already attested', {
          cause: err,
        })
      }
    })
  }

  async fetch(spiffeId: SpiffeId): Promise<AttestedAgent | undefined> {
    const row = guard('fetch an agent', () => this.#fetch.get(spiffeId.toString()))
    return row === undefined ? undefined : rowToAgent(row)
  }

  async list(filter: AgentFilter = {}, page: PageRequest = {}): Promise<AgentPage> {
    const size = resolvePageSize(page.pageSize)
    const after = decodePageToken('agents', page.pageToken, isAgentKey) ?? null
    const banned = filter.banned === undefined ? null : Number(filter.banned)
    const rows = guard('list agents', () => this.#list.all({ after, banned, limit: size + 1 }))
    const agents = rows.slice(0, size).map(rowToAgent)
    const last = agents[agents.length - 1]
    const hasMore = rows.length > size && last !== undefined
    return {
      agents,
      nextPageToken: hasMore ? encodePageToken('agents', last.spiffeId.toString()) : undefined,
    }
  }

  async update(
    spiffeId: SpiffeId,
    changes: AgentChanges,
    hooks?: CommitHooks<AttestedAgent>,
  ): Promise<AttestedAgent> {
    return guard('update an agent', () => this.#update(hooks, spiffeId, changes))
  }

  async delete(spiffeId: SpiffeId, hooks?: CommitHooks<AttestedAgent>): Promise<AttestedAgent> {
    return guard('delete an agent', () => this.#remove(hooks, spiffeId))
  }

  async count(filter: AgentFilter = {}): Promise<number> {
    const banned = filter.banned === undefined ? null : Number(filter.banned)
    return guard('count agents', () => this.#count.get({ banned }) ?? 0)
  }

  #updateRow(spiffeId: SpiffeId, changes: AgentChanges): AttestedAgent {
    const row = this.#fetch.get(spiffeId.toString())
    if (row === undefined) throw notFound(spiffeId)
    const current = rowToAgent(row)
    const next: AttestedAgent = {
      ...current,
      ...definedOnly(changes),
      spiffeId: current.spiffeId,
      updatedAtMs: this.#clock.nowMs(),
    }
    const nextRow = toRow(next)
    this.#replace.run(nextRow)
    return rowToAgent(nextRow)
  }
}

/** The changes whose value is not undefined (an absent field keeps its stored value). */
function definedOnly(changes: AgentChanges): AgentChanges {
  return Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined)) as AgentChanges
}
