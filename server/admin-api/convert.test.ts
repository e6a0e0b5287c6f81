import { describe, expect, it } from 'vitest'
import type { _tessera_admin_v1_ListEntriesRequest_Filter__Output as FilterMessage } from '../../common/gen/tessera/admin/v1/ListEntriesRequest.js'
import type { Entry__Output } from '../../common/gen/tessera/types/v1/Entry.js'
import { type ErrorCode, IdentityError } from '../../lib/core/errors.js'
import { fromEntry, toEntryFields, toEntryFilter, toEntryId, toMatchMode } from './convert.js'

function codeOf(fn: () => unknown): ErrorCode | undefined {
  try {
    fn()
  } catch (err) {
    if (err instanceof IdentityError) return err.code
    throw err
  }
  return undefined
}

function message(overrides: Partial<Entry__Output> = {}): Entry__Output {
  return {
    id: '',
    spiffe_id: 'spiffe://example.org/web',
    parent_id: 'spiffe://example.org/agent',
    selectors: [{ type: 'unix', value: 'uid:1000' }],
    x509_svid_ttl: 3600,
    jwt_svid_ttl: 0,
    dns_names: ['web.example.org'],
    hint: 'web',
    admin: true,
    federates_with: ['spiffe://other.org'],
    expires_at: 1_900_000_000,
    revision_number: 0,
    created_at: 0,
    created_at_ms: 0,
    ...overrides,
  }
}

function filter(overrides: Partial<FilterMessage> = {}): FilterMessage {
  return {
    by_spiffe_id: '',
    by_parent_id: '',
    by_selectors: [],
    selector_match: '',
    by_federates_with: '',
    by_hint: '',
    ...overrides,
  }
}

describe('toEntryFields', () => {
  it('converts every field, seconds to milliseconds', () => {
    const fields = toEntryFields(message())
    expect(fields.spiffeId.toString()).toBe('spiffe://example.org/web')
    expect(fields.selectors.map(String)).toEqual(['unix:uid:1000'])
    expect([fields.x509SvidTtlMs, fields.jwtSvidTtlMs, fields.expiresAtMs]).toEqual([
      3_600_000, 0, 1_900_000_000_000,
    ])
    expect(fields.federatesWith.map((td) => td.name)).toEqual(['other.org'])
    expect(toEntryFields(message({ expires_at: 0 })).expiresAtMs).toBeUndefined()
  })

  it.each<[string, Partial<Entry__Output> | null, ErrorCode]>([
    ['no entry', null, 'ERR_REQUEST_INVALID'],
    ['an empty SPIFFE ID', { spiffe_id: '' }, 'ERR_ID_INVALID'],
    ['a malformed SPIFFE ID', { spiffe_id: 'spiffe://Example.org/web' }, 'ERR_ID_INVALID'],
    ['a non-SPIFFE URI', { spiffe_id: 'https://example.org/web' }, 'ERR_ID_INVALID'],
    ['a malformed parent ID', { parent_id: 'spiffe://example.org/a//b' }, 'ERR_ID_INVALID'],
    ['a selector without a type', { selectors: [{ type: '', value: 'uid:1' }] }, 'ERR_SELECTOR_INVALID'],
    [
      'a malformed unix selector',
      { selectors: [{ type: 'unix', value: 'uid:abc' }] },
      'ERR_SELECTOR_INVALID',
    ],
    ['an unknown unix kind', { selectors: [{ type: 'unix', value: 'cmdline:x' }] }, 'ERR_SELECTOR_INVALID'],
    ['a negative X.509 TTL', { x509_svid_ttl: -1 }, 'ERR_TTL_INVALID'],
    ['a negative JWT TTL', { jwt_svid_ttl: -60 }, 'ERR_TTL_INVALID'],
    ['a TTL over ten years', { x509_svid_ttl: 2_000_000_000 }, 'ERR_TTL_INVALID'],
    ['a malformed DNS name', { dns_names: ['bad name'] }, 'ERR_DNS_NAME_INVALID'],
    ['a control character in the hint', { hint: 'a\u0000b' }, 'ERR_ENTRY_INVALID'],
    ['a malformed federated trust domain', { federates_with: ['Other.ORG'] }, 'ERR_TRUST_DOMAIN_INVALID'],
    ['a negative expiry', { expires_at: -5 }, 'ERR_ENTRY_INVALID'],
    ['an expiry after 9999', { expires_at: 300_000_000_000 }, 'ERR_ENTRY_INVALID'],
  ])('refuses %s', (_name, overrides, code) => {
    expect(codeOf(() => toEntryFields(overrides === null ? null : message(overrides)))).toBe(code)
  })

  it('round-trips through fromEntry', () => {
    const entry = {
      ...toEntryFields(message()),
      id: '8d5e2a4c-0b2f-4c47-9a51-3e8f6f0d1c2b',
      revision: 3,
      createdAtMs: 1_700_000_000_500,
    }
    const back = fromEntry(entry)
    const expected = { ...message(), federates_with: ['other.org'] }
    expect(back).toEqual({
      ...expected,
      id: entry.id,
      revision_number: 3,
      created_at: 1_700_000_000,
      created_at_ms: 1_700_000_000_500,
    })
  })
})

describe('toEntryId', () => {
  it.each(['', 'abc', '../etc', 'x'.repeat(5000)])('refuses %j', (id) => {
    expect(codeOf(() => toEntryId(id))).toBe('ERR_REQUEST_INVALID')
  })

  it('accepts a UUID, lowercased', () => {
    expect(toEntryId('8D5E2A4C-0B2F-4C47-9A51-3E8F6F0D1C2B')).toBe('8d5e2a4c-0b2f-4c47-9a51-3e8f6f0d1c2b')
  })
})

describe('toEntryFilter', () => {
  it('builds only the filters that are set', () => {
    expect(toEntryFilter(null)).toEqual({})
    expect(toEntryFilter(filter())).toEqual({})
    const built = toEntryFilter(
      filter({
        by_parent_id: 'spiffe://example.org/agent',
        by_selectors: [{ type: 'unix', value: 'uid:1' }],
        selector_match: 'superset',
        by_federates_with: 'other.org',
        by_hint: 'h',
      }),
    )
    expect(built.parentId?.toString()).toBe('spiffe://example.org/agent')
    expect(built.selectors?.mode).toBe('superset')
    expect(built.federatesWith?.set.map((td) => td.name)).toEqual(['other.org'])
    expect(built.hint).toBe('h')
  })

  it.each<[Partial<FilterMessage>, ErrorCode]>([
    [{ selector_match: 'most' }, 'ERR_SELECTOR_INVALID'],
    [{ by_selectors: [{ type: 'unix', value: 'uid:x' }] }, 'ERR_SELECTOR_INVALID'],
    [{ by_spiffe_id: 'spiffe:/x' }, 'ERR_ID_INVALID'],
    [{ by_federates_with: 'BAD TD' }, 'ERR_TRUST_DOMAIN_INVALID'],
  ])('refuses %j', (overrides, code) => {
    expect(codeOf(() => toEntryFilter(filter(overrides)))).toBe(code)
  })

  it.each(['exact', 'subset', 'superset', 'any'])('knows the match mode %s', (mode) => {
    expect(toMatchMode(mode)).toBe(mode)
  })
})
