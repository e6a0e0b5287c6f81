import { describe, expect, it } from 'vitest'
import { TrustDomain } from '../../lib/core/trust-domain.js'
import { TaskAudiences } from './task-audiences.js'

const TD = TrustDomain.parse('example.org')
const known = (patterns: string[], audience: string) =>
  TaskAudiences.parse(patterns, TD).unknown([audience]).length === 0

describe('TaskAudiences', () => {
  it('matches exact audiences, and the own trust domain at any depth once a pattern is set', () => {
    expect(known(['tool'], 'tool')).toBe(true)
    expect(known(['tool'], 'tools')).toBe(false)
    expect(known(['tool'], 'spiffe://example.org/a/b')).toBe(true)
    expect(known(['tool'], 'spiffe://example.org.evil/a')).toBe(false)
    expect(known(['tool'], 'spiffe://other.org/a')).toBe(false)
  })

  it('keeps * within a segment: a host wildcard never reaches into the path', () => {
    const hosts = ['https://*.example.com']
    expect(known(hosts, 'https://api.example.com')).toBe(true)
    expect(known(hosts, 'https://evil.test/.example.com')).toBe(false)
    expect(known(['spiffe://example.net/tools/*'], 'spiffe://example.net/tools/git')).toBe(true)
    expect(known(['spiffe://example.net/tools/*'], 'spiffe://example.net/tools/git/x')).toBe(false)
  })

  it('lets ** cross segments', () => {
    expect(known(['https://api.example.com/**'], 'https://api.example.com/v1/repos')).toBe(true)
    expect(known(['https://api.example.com/**'], 'https://api.example.com.evil/v1')).toBe(false)
  })

  it('accepts any audience when no pattern is configured', () => {
    expect(TaskAudiences.parse([], TD).isOpen).toBe(true)
    expect(known([], 'https://anything.test/x')).toBe(true)
  })

  it('refuses a pattern with spaces or control characters', () => {
    expect(() => TaskAudiences.parse(['two words'], TD)).toThrow(/spaces/)
    expect(() => TaskAudiences.parse(['a\u0000b'], TD)).toThrow(/spaces/)
  })
})
