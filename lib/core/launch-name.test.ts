import { describe, expect, it } from 'vitest'
import { findLaunchNameProblem, requireLaunchName } from './launch-name.js'
import { Selector } from './selector.js'

describe('launch names', () => {
  it.each(['a', 'claude', 'cursor-agent', 'mcp_client2', 'a'.repeat(24)])('accepts %s', (name) => {
    expect(findLaunchNameProblem(name)).toBeUndefined()
  })
  it.each(['', 'Claude', '1agent', '-x', 'a b', 'a:b', 'a/b', 'a'.repeat(25), 'é'])('refuses %j', (name) => {
    expect(() => requireLaunchName(name)).toThrow(expect.objectContaining({ code: 'ERR_LAUNCH_INVALID' }))
  })
})

describe('tessera selectors', () => {
  it('parses tessera:launch:NAME', () => {
    expect(Selector.parse('tessera:launch:claude').value).toBe('launch:claude')
  })
  it.each(['tessera:launch:', 'tessera:launch:Bad', 'tessera:other:x', 'tessera:launch:a:b'])(
    'refuses %s with ERR_SELECTOR_INVALID',
    (text) => {
      expect(() => Selector.parse(text)).toThrow(expect.objectContaining({ code: 'ERR_SELECTOR_INVALID' }))
    },
  )
})
