import { describe, expect, it } from 'vitest'
import { isIdentityError } from '../errors.js'
import { HumanScopes } from './human-scopes.js'

describe('HumanScopes', () => {
  it.each([
    [['repo:write'], ['repo:write', 'repo:read'], ['repo:write']],
    [['deploy:*'], ['deploy:prod', 'deploy:', 'deployx'], ['deploy:prod', 'deploy:']],
    [['*:write'], ['repo:write', 'repo:read'], ['repo:write']],
    [['*'], ['a', 'b'], ['a', 'b']],
    [['a.b'], ['a.b', 'axb'], ['a.b']],
    [[], ['repo:write'], []],
  ])('%j marks %j as %j', (patterns, scopes, expected) => {
    expect(HumanScopes.parse(patterns).matching(scopes)).toEqual(expected)
  })

  it.each([[['has space']], [['']], [['quote"']], [Array.from({ length: 300 }, (_, i) => `s${i}`)]])(
    'refuses %j',
    (patterns) => {
      let caught: unknown
      try {
        HumanScopes.parse(patterns)
      } catch (err) {
        caught = err
      }
      expect(isIdentityError(caught, 'ERR_CONFIG_INVALID')).toBe(true)
    },
  )
})
