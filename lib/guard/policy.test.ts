import { describe, expect, it } from 'vitest'
import { ConfigError } from '../../common/config/config-source.js'
import { isIdentityError } from '../core/errors.js'
import { SpiffeId } from '../core/spiffe-id.js'
import { Policy, type PolicyRequest } from './policy.js'
import { compileIdPattern, compilePathPattern, compileToolPattern } from './policy-pattern.js'

const id = (text: string) => SpiffeId.parse(text)
const req = (spiffeId: string, method: string, path: string, tools?: string[]): PolicyRequest => ({
  id: id(spiffeId),
  method,
  path,
  ...(tools !== undefined && { tools }),
})

function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn()
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  return []
}

describe('SPIFFE ID patterns', () => {
  it.each([
    ['spiffe://td/agents/claude', 'spiffe://td/agents/claude', true],
    ['spiffe://td/agents/claude', 'spiffe://td/agents/claude2', false],
    ['spiffe://td/agents/*', 'spiffe://td/agents/claude', true],
    ['spiffe://td/agents/*', 'spiffe://td/agents/claude/sub', false],
    ['spiffe://td/agents/*', 'spiffe://td/agents', false],
    ['spiffe://td/agents/*', 'spiffe://td/agentsx/y', false],
    ['spiffe://td/agents/**', 'spiffe://td/agents', true],
    ['spiffe://td/agents/**', 'spiffe://td/agents/a/b/c', true],
    ['spiffe://td/agents/**', 'spiffe://td/agentsx', false],
    ['spiffe://td/**', 'spiffe://td/anything/at/all', true],
    ['spiffe://td/**', 'spiffe://other/anything', false],
    ['spiffe://td/*', 'spiffe://tdx/a', false],
  ])('%s matches %s: %s', (pattern, value, expected) => {
    expect(compileIdPattern(pattern)(value)).toBe(expected)
  })

  it.each([
    ['spiffe://td/agents/cl*'],
    ['spiffe://td/*/claude'],
    ['spiffe://*/agents'],
    ['https://td/agents'],
    ['spiffe://TD/x'],
    [''],
    [42],
  ])('refuses %j', (pattern) => {
    expect(() => compileIdPattern(pattern)).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }))
  })
})

describe('path and tool patterns', () => {
  it.each([
    ['/health', '/health', true],
    ['/health', '/health/', false],
    ['/tools/*', '/tools/search', true],
    ['/tools/*', '/tools/', false],
    ['/tools/*', '/tools/a/b', false],
    ['/tools/**', '/tools', true],
    ['/tools/**', '/tools/a/b', true],
    ['/tools/**', '/toolsx', false],
    ['/**', '/', true],
    ['/**', '/anything/below', true],
    ['/*', '/one', true],
    ['/*', '/one/two', false],
    ['/', '/', true],
    ['/Admin/**', '/admin/x', false],
  ])('path %s matches %s: %s', (pattern, value, expected) => {
    expect(compilePathPattern(pattern)(value)).toBe(expected)
  })

  it.each([['tools'], ['/a/*/b'], ['/a*'], ['/a//b'], ['/a/../b'], ['/a?x=1'], ['//**']])(
    'refuses the path pattern %j',
    (pattern) => {
      expect(() => compilePathPattern(pattern)).toThrow(
        expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }),
      )
    },
  )

  it.each([
    ['search', 'search', true],
    ['search', 'search2', false],
    ['fs_*', 'fs_read', true],
    ['fs_*', 'net_get', false],
    ['*', 'anything', true],
  ])('tool %s matches %s: %s', (pattern, value, expected) => {
    expect(compileToolPattern(pattern)(value)).toBe(expected)
  })

  it('refuses a tool wildcard that is not last', () => {
    expect(() => compileToolPattern('f*s')).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }))
  })
})

describe('Policy.fromJson validation', () => {
  it('lists every problem at once, with its place', () => {
    const problems = problemsOf(() =>
      Policy.fromJson({
        rules: [
          { effect: 'permit', spiffeIds: ['spiffe://td/a*'] },
          { effect: 'allow', methods: ['GET', 'NOT A METHOD'], paths: [], color: 'red' },
          'not a rule',
        ],
        default: 'maybe',
        extra: true,
      }),
    )
    expect(problems).toEqual([
      'policy: extra: unknown key',
      'policy: default: must be "allow" or "deny"',
      'policy: rules[0].effect: must be "allow" or "deny"',
      expect.stringMatching(/^policy: rules\[0\]\.spiffeIds\[0\]: /),
      'policy: rules[1].color: unknown key',
      expect.stringMatching(/^policy: rules\[1\]\.methods\[1\]: /),
      'policy: rules[1].paths: must be a non-empty array',
      'policy: rules[2]: must be an object',
    ])
  })

  it.each([[null], [[]], ['rules'], [{ default: 'deny' }]])('refuses %j', (value) => {
    expect(() => Policy.fromJson(value)).toThrow(ConfigError)
  })

  it('defaults to deny', () => {
    expect(Policy.fromJson({ rules: [] }).evaluate(req('spiffe://td/a', 'GET', '/')).effect).toBe('deny')
  })

  it('Policy.read names the file when it is missing or not JSON', () => {
    const err = (() => {
      try {
        Policy.read('/nonexistent/policy.json')
      } catch (e) {
        return e
      }
    })()
    expect(isIdentityError(err, 'ERR_CONFIG_INVALID')).toBe(true)
    expect((err as ConfigError).problems[0]).toContain('/nonexistent/policy.json')
  })
})

describe('Policy.evaluate', () => {
  const policy = Policy.fromJson({
    rules: [
      {
        name: 'agents use tools',
        effect: 'allow',
        spiffeIds: ['spiffe://td/agents/*'],
        paths: ['/tools/**'],
      },
      { effect: 'allow', spiffeIds: ['spiffe://td/admin'] },
      {
        name: 'no admin paths for agents',
        effect: 'deny',
        spiffeIds: ['spiffe://td/agents/*'],
        paths: ['/admin/**'],
      },
      {
        name: 'intern reads only',
        effect: 'deny',
        spiffeIds: ['spiffe://td/agents/intern'],
        methods: ['post', 'PUT'],
      },
      { effect: 'allow', spiffeIds: ['spiffe://td/agents/*'], paths: ['/admin/**'] },
    ],
    default: 'deny',
  })

  it.each([
    ['spiffe://td/agents/claude', 'GET', '/tools/search', 'allow', 'agents use tools'],
    ['spiffe://td/agents/claude', 'post', '/tools/search', 'allow', 'agents use tools'],
    ['spiffe://td/agents/intern', 'GET', '/tools/search', 'allow', 'agents use tools'],
    ['spiffe://td/agents/intern', 'POST', '/tools/search', 'deny', 'intern reads only'],
    ['spiffe://td/agents/claude', 'GET', '/admin/users', 'deny', 'no admin paths for agents'],
    ['spiffe://td/agents/claude', 'GET', '/other', 'deny', 'default'],
    ['spiffe://td/agents/claude/sub', 'GET', '/tools/x', 'deny', 'default'],
    ['spiffe://td/admin', 'DELETE', '/admin/users', 'allow', 'rules[1]'],
    ['spiffe://other/agents/claude', 'GET', '/tools/x', 'deny', 'default'],
  ])('%s %s %s → %s (%s)', (spiffeId, method, path, effect, rule) => {
    expect(policy.evaluate(req(spiffeId, method, path))).toEqual({ effect, rule })
  })

  it('deny rules win whatever their order', () => {
    const allowFirst = Policy.fromJson({
      rules: [
        { effect: 'allow', spiffeIds: ['spiffe://td/**'] },
        { effect: 'deny', spiffeIds: ['spiffe://td/bad'] },
      ],
      default: 'allow',
    })
    expect(allowFirst.evaluate(req('spiffe://td/bad', 'GET', '/')).effect).toBe('deny')
    expect(allowFirst.evaluate(req('spiffe://td/good', 'GET', '/')).effect).toBe('allow')
  })

  it('Policy.allowAll allows everything', () => {
    expect(Policy.allowAll().evaluate(req('spiffe://x/y', 'GET', '/')).effect).toBe('allow')
  })
})

describe('Policy.evaluate with tools', () => {
  const policy = Policy.fromJson({
    rules: [
      { effect: 'allow', spiffeIds: ['spiffe://td/**'], tools: ['search', 'fs_*'] },
      { effect: 'allow', spiffeIds: ['spiffe://td/**'], methods: ['GET'] },
      { name: 'no shell', effect: 'deny', tools: ['shell'] },
      { name: 'no writes for bots', effect: 'deny', spiffeIds: ['spiffe://td/bots/*'], tools: ['fs_write'] },
    ],
  })
  const agent = 'spiffe://td/agents/a'

  it('reports usesTools', () => {
    expect(policy.usesTools).toBe(true)
    expect(Policy.allowAll().usesTools).toBe(false)
  })

  it.each([
    [agent, 'POST', ['search'], 'allow', undefined],
    [agent, 'POST', ['search', 'fs_read'], 'allow', undefined],
    [agent, 'POST', ['search', 'shell'], 'deny', 'shell'],
    [agent, 'POST', ['deploy'], 'deny', 'deploy'],
    ['spiffe://td/bots/b', 'POST', ['fs_write'], 'deny', 'fs_write'],
    [agent, 'POST', ['fs_write'], 'allow', undefined],
  ])('%s %s %j → %s', (spiffeId, method, tools, effect, tool) => {
    const decision = policy.evaluate(req(spiffeId, method, '/mcp', tools))
    expect(decision.effect).toBe(effect)
    expect(decision.tool).toBe(tool)
  })

  it('a request that calls no tool matches neither tool allow nor tool deny rules', () => {
    expect(policy.evaluate(req(agent, 'GET', '/mcp', [])).effect).toBe('allow')
    expect(policy.evaluate(req(agent, 'POST', '/mcp', [])).effect).toBe('deny')
  })

  it('unknown tools fail closed: deny rules on tools match, allow rules on tools do not', () => {
    expect(policy.evaluate(req(agent, 'GET', '/mcp'))).toEqual({ effect: 'deny', rule: 'no shell' })
    const allowOnly = Policy.fromJson({ rules: [{ effect: 'allow', tools: ['search'] }] })
    expect(allowOnly.evaluate(req(agent, 'POST', '/mcp')).effect).toBe('deny')
  })
})

describe('Policy paths: one trailing slash and letter case', () => {
  const rules = [
    { name: 'no shell over MCP', effect: 'deny', paths: ['/mcp'], tools: ['shell'] },
    { name: 'admin is closed', effect: 'deny', paths: ['/admin/**'] },
    { effect: 'allow', paths: ['/**'] },
  ]
  const agent = 'spiffe://td/agents/a'
  const sensitive = Policy.fromJson({ rules })
  const insensitive = Policy.fromJson({ rules, pathCase: 'insensitive' })

  it.each([['/mcp'], ['/mcp/']])('%s is /mcp to the policy', (path) => {
    expect(sensitive.evaluate(req(agent, 'POST', path, ['shell'])).effect).toBe('deny')
    expect(sensitive.evaluate(req(agent, 'POST', path, ['search'])).effect).toBe('allow')
  })

  it('an exact pattern with a trailing slash means the same path', () => {
    const policy = Policy.fromJson({ rules: [{ effect: 'allow', paths: ['/tools/'] }] })
    expect(policy.evaluate(req(agent, 'GET', '/tools')).effect).toBe('allow')
    expect(policy.evaluate(req(agent, 'GET', '/tools/')).effect).toBe('allow')
  })

  it.each([['/MCP'], ['/Mcp/'], ['/ADMIN/users'], ['/ADMIN']])(
    'case-sensitive (the default): %s differs from a policy path only by case and is refused',
    (path) => {
      expect(codeOf(() => sensitive.checkPath(path))).toBe('ERR_PATH_INVALID')
      expect(sensitive.evaluate(req(agent, 'GET', path, []))).toEqual({ effect: 'deny', rule: 'pathCase' })
    },
  )

  it.each([['/mcp'], ['/mcpx'], ['/tools/MCP'], ['/administrator'], ['/']])(
    '%s is not confusable',
    (path) => {
      expect(codeOf(() => sensitive.checkPath(path))).toBeUndefined()
    },
  )

  it('case-insensitive: /MCP is /mcp, and nothing is refused for case', () => {
    expect(insensitive.pathCase).toBe('insensitive')
    expect(codeOf(() => insensitive.checkPath('/MCP'))).toBeUndefined()
    expect(insensitive.evaluate(req(agent, 'POST', '/MCP/', ['shell'])).effect).toBe('deny')
    expect(insensitive.evaluate(req(agent, 'GET', '/Admin/x', [])).effect).toBe('deny')
  })

  it('pathCase must be sensitive or insensitive', () => {
    expect(problemsOf(() => Policy.fromJson({ rules: [], pathCase: 'maybe' }))).toEqual([
      'policy: pathCase: must be "sensitive" or "insensitive"',
    ])
  })
})

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
    return undefined
  } catch (err) {
    return isIdentityError(err) ? err.code : String(err)
  }
}
