import { describe, expect, it } from 'vitest'
import { TrustDomain } from '../../lib/core/trust-domain.js'
import { expandIdTemplate } from './id-template.js'
import type { PendingFacts } from './pending-request.js'

const TD = TrustDomain.parse('example.org')
const FACTS: PendingFacts = {
  uid: 1000,
  userName: 'alice',
  gid: 1000,
  exePath: '/home/alice/bin/claude',
  sha256: '0123456789abcdef'.repeat(4),
  cgroup: '/',
  parentExe: '/usr/bin/bash',
}

describe('expandIdTemplate', () => {
  it.each([
    ['spiffe://{trust_domain}/agents/{exe_name}', {}, 'spiffe://example.org/agents/claude'],
    ['spiffe://{trust_domain}/u/{user}/{uid}', {}, 'spiffe://example.org/u/alice/1000'],
    ['spiffe://{trust_domain}/h/{sha256_prefix}', {}, 'spiffe://example.org/h/0123456789ab'],
    ['spiffe://{trust_domain}/u/{user}', { userName: '' }, 'spiffe://example.org/u/uid-1000'],
    [
      'spiffe://{trust_domain}/a/{exe_name}',
      { exePath: '/x/my tool+v2' },
      'spiffe://example.org/a/my_tool_v2',
    ],
    ['spiffe://{trust_domain}/a/{exe_name}', { exePath: '/x/gone (deleted)' }, 'spiffe://example.org/a/gone'],
    ['spiffe://{trust_domain}/a/{exe_name}', { exePath: '/x/..' }, 'spiffe://example.org/a/_'],
    ['spiffe://fixed.test/a', {}, 'spiffe://fixed.test/a'],
  ])('%s with %o gives %s', (template, overrides, expected) => {
    expect(expandIdTemplate(template, { ...FACTS, ...overrides }, TD).toString()).toBe(expected)
  })

  it.each([
    'spiffe://{trust_domain}/{nope}',
    'spiffe://{trust_domain}/a}',
    'spiffe://{trust_domain}/{a',
    'spiffe://{trust_domain}/{}',
    'no-scheme/{exe_name}',
    'spiffe://{trust_domain}/a//b',
    '',
    `spiffe://{trust_domain}/${'a'.repeat(3000)}`,
  ])('refuses %s with ERR_TEMPLATE_INVALID', (template) => {
    expect(() => expandIdTemplate(template, FACTS, TD)).toThrow(
      expect.objectContaining({ code: 'ERR_TEMPLATE_INVALID' }),
    )
  })
})
