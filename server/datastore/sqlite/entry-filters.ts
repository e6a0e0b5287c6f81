import { IdentityError } from '../../../lib/core/errors.js'
import { normalizeSelectors, type SelectorMatchMode } from '../../../lib/core/selector.js'
import type { EntryFilter } from '../ports.js'

/** SQL conditions on `entries e` and their named parameters. */
export interface EntryConditions {
  /** Joined with AND; `1` when there is no condition. */
  readonly where: string
  readonly params: Record<string, string | number>
}

/** A child table holding one set per entry, and how its rows are compared with the query's set. */
interface SetTable {
  readonly table: string
  /** True for a row whose member is in the query set. */
  readonly isMember: string
  /** The column of `entries` holding the size of the entry's set. */
  readonly countColumn: string
  /** The parameter holding the size of the (distinct) query set. */
  readonly countParam: string
}

const SELECTOR_SET: SetTable = {
  table: 'entry_selectors',
  isMember: '(type, value) IN (SELECT j.value ->> 0, j.value ->> 1 FROM json_each(@selectors) j)',
  countColumn: 'selector_count',
  countParam: '@selectorCount',
}

const FEDERATES_SET: SetTable = {
  table: 'entry_federates_with',
  isMember: 'trust_domain IN (SELECT j.value FROM json_each(@federates) j)',
  countColumn: 'federates_count',
  countParam: '@federatesCount',
}

/**
 * The condition that an entry's set compares with the query set under `mode`. Every mode is driven
 * by the child table's index on the member, so only entries sharing a member are looked at; an entry
 * with an empty set, or an empty query, never matches (as `matchSelectors`).
 * @throws ERR_SELECTOR_INVALID for an unknown mode
 */
function setMatchCondition(mode: SelectorMatchMode, t: SetTable): string {
  const members = `SELECT entry_id FROM ${t.table} WHERE ${t.isMember}`
  switch (mode) {
    case 'any':
      return `e.id IN (${members})`
    case 'superset':
      return `e.id IN (${members} GROUP BY entry_id HAVING count(*) = ${t.countParam})`
    case 'exact':
      return `e.${t.countColumn} = ${t.countParam} AND e.id IN (${members} GROUP BY entry_id HAVING count(*) = ${t.countParam})`
    case 'subset':
      return `(e.id, e.${t.countColumn}) IN (SELECT entry_id, count(*) FROM ${t.table} WHERE ${t.isMember} GROUP BY entry_id)`
    default:
      throw new IdentityError('ERR_SELECTOR_INVALID', 'unknown match mode')
  }
}

/**
 * The SQL conditions for `filter`. The SQL text depends only on which filters are present and their
 * modes, so callers can cache one prepared statement per text.
 * @throws ERR_SELECTOR_INVALID for an unknown match mode
 */
export function buildEntryConditions(filter: EntryFilter = {}): EntryConditions {
  const where: string[] = []
  const params: Record<string, string | number> = {}
  if (filter.spiffeId !== undefined) {
    where.push('e.spiffe_id = @spiffeId')
    params['spiffeId'] = filter.spiffeId.toString()
  }
  if (filter.parentId !== undefined) {
    where.push('e.parent_id = @parentId')
    params['parentId'] = filter.parentId.toString()
  }
  if (filter.hint !== undefined) {
    where.push('e.hint = @hint')
    params['hint'] = filter.hint
  }
  if (filter.selectors !== undefined) {
    const set = normalizeSelectors(filter.selectors.set)
    where.push(setMatchCondition(filter.selectors.mode, SELECTOR_SET))
    params['selectors'] = JSON.stringify(set.map((s) => [s.type, s.value]))
    params['selectorCount'] = set.length
  }
  if (filter.federatesWith !== undefined) {
    const names = [...new Set(filter.federatesWith.set.map((td) => td.name))]
    where.push(setMatchCondition(filter.federatesWith.mode, FEDERATES_SET))
    params['federates'] = JSON.stringify(names)
    params['federatesCount'] = names.length
  }
  return { where: where.length === 0 ? '1' : where.join(' AND '), params }
}
