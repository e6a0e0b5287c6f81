import { describe, expect, it } from 'vitest'
import { ConfigError } from '../core/config-error.js'
import { SpiffeId } from '../core/spiffe-id.js'
import { Policy, type PolicyRequest, type PolicyTask } from './policy.js'
import { compileMcpMethodPattern, compilePurposePattern } from './policy-intent.js'

const agent = SpiffeId.parse('spiffe://td/agents/a')
const post = (extra: Partial<PolicyRequest> = {}): PolicyRequest => ({
  id: agent,
  method: 'POST',
  path: '/mcp',
  mcpMethods: ['tools/call'],
  ...extra,
})
const task = (scopes: string[], purpose = 'fix issue 12'): PolicyTask => ({ scopes, purpose })

function problemsOf(value: unknown): readonly string[] {
  try {
    Policy.fromJson(value)
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  return []
}

describe('intent rule keys: validation', () => {
  it('lists every bad intent key with its place', () => {
    const problems = problemsOf({
      rules: [
        { effect: 'allow', scopes: [], purpose: '', proof: 'yes' },
        { effect: 'allow', scopes: ['repo write', 7], mcpMethods: ['tools/call', 'a b', 'x*y'] },
      ],
    })
    expect(problems).toEqual([
      'policy: rules[0].proof: must be true or false',
      expect.stringMatching(/^policy: rules\[0\]\.purpose: /),
      'policy: rules[0].scopes: must be a non-empty array',
      expect.stringMatching(/^policy: rules\[1\]\.scopes\[0\]: /),
      expect.stringMatching(/^policy: rules\[1\]\.scopes\[1\]: /),
      expect.stringMatching(/^policy: rules\[1\]\.mcpMethods\[1\]: /),
      expect.stringMatching(/^policy: rules\[1\]\.mcpMethods\[2\]: /),
    ])
  })

  it.each([
    ['fix issue *', 'fix issue 12', true],
    ['fix issue *', 'fix issue ', true],
    ['fix issue *', 'Fix issue 12', false],
    ['fix issue *', 'please fix issue 12', false],
    ['a.c', 'abc', false],
    ['*(draft)*', 'a (draft) b', true],
  ])('purpose %j against %j → %s', (pattern, purpose, expected) => {
    expect(compilePurposePattern(pattern)(purpose)).toBe(expected)
  })

  it.each([
    ['tools/call', 'tools/call', true],
    ['tools/call', 'tools/list', false],
    ['resources/*', 'resources/read', true],
    ['*', 'prompts/get', true],
  ])('mcpMethods %j against %j → %s', (pattern, method, expected) => {
    expect(compileMcpMethodPattern(pattern)(method)).toBe(expected)
  })
})

describe('Policy.evaluate with scopes and purpose', () => {
  const policy = Policy.fromJson({
    rules: [
      { name: 'writers', effect: 'allow', paths: ['/mcp'], scopes: ['repo:write'], purpose: 'fix issue *' },
      { name: 'reads', effect: 'allow', methods: ['GET'] },
    ],
  })

  it('allows a task token holding every scope with a matching purpose', () => {
    expect(policy.evaluate(post({ task: task(['repo:read', 'repo:write']) }))).toEqual({
      effect: 'allow',
      rule: 'writers',
    })
  })

  it('without a task token: denied, naming the rule and the missing token', () => {
    expect(policy.evaluate(post())).toEqual({
      effect: 'deny',
      rule: 'writers',
      mcpMethod: 'tools/call',
      unmet: { condition: 'taskToken' },
    })
  })

  it('a token lacking the scope: denied with the missing scopes', () => {
    const decision = policy.evaluate(post({ task: task(['repo:read']) }))
    expect(decision.unmet).toEqual({ condition: 'scopes', missing: ['repo:write'] })
    expect(decision.effect).toBe('deny')
  })

  it('a purpose that does not match: denied for the purpose', () => {
    const decision = policy.evaluate(post({ task: task(['repo:write'], 'delete everything') }))
    expect(decision).toMatchObject({ effect: 'deny', rule: 'writers', unmet: { condition: 'purpose' } })
  })

  it('a request no intent rule is about is denied by default, with nothing unmet', () => {
    expect(policy.evaluate(post({ path: '/other' }))).toEqual({
      effect: 'deny',
      rule: 'default',
      mcpMethod: 'tools/call',
    })
  })

  it('a deny rule with scopes matches a request without a task token (fail closed)', () => {
    const deny = Policy.fromJson({
      default: 'allow',
      rules: [{ name: 'no admin', effect: 'deny', paths: ['/admin'], scopes: ['admin'] }],
    })
    const admin = { id: agent, method: 'GET', path: '/admin' }
    expect(deny.evaluate(admin)).toEqual({
      effect: 'deny',
      rule: 'no admin',
      unmet: { condition: 'taskToken' },
    })
    expect(deny.evaluate({ ...admin, task: task(['admin']) })).toEqual({ effect: 'deny', rule: 'no admin' })
    expect(deny.evaluate({ ...admin, task: task(['read']) }).effect).toBe('allow')
  })
})

describe('Policy.evaluate with mcpMethods', () => {
  const policy = Policy.fromJson({
    rules: [
      { effect: 'allow', paths: ['/mcp'] },
      { name: 'no resources', effect: 'deny', mcpMethods: ['resources/*'] },
    ],
  })

  it('reports usesMcpMethods and decidesMessages', () => {
    expect(policy.usesMcpMethods).toBe(true)
    expect(policy.decidesMessages).toBe(true)
    expect(Policy.fromJson({ rules: [{ effect: 'allow', scopes: ['a'] }] }).usesMcpMethods).toBe(false)
  })

  it.each([
    [['tools/call'], 'allow', undefined],
    [['resources/read'], 'deny', 'resources/read'],
    [['tools/call', 'resources/read'], 'deny', 'resources/read'],
    [[], 'allow', undefined],
    [undefined, 'deny', undefined],
  ])('%j → %s', (mcpMethods, effect, mcpMethod) => {
    const decision = policy.evaluate(
      post(mcpMethods === undefined ? { mcpMethods: undefined } : { mcpMethods }),
    )
    expect(decision.effect).toBe(effect)
    expect(decision.mcpMethod).toBe(mcpMethod)
  })

  it('an allow rule with mcpMethods does not match a request with none or unknown ones', () => {
    const only = Policy.fromJson({ rules: [{ effect: 'allow', mcpMethods: ['tools/call'] }] })
    expect(only.evaluate(post()).effect).toBe('allow')
    expect(only.evaluate(post({ mcpMethods: [] })).effect).toBe('deny')
    expect(only.evaluate(post({ mcpMethods: undefined })).effect).toBe('deny')
  })
})

describe('Policy.evaluate with proof', () => {
  const policy = Policy.fromJson({ rules: [{ name: 'bound', effect: 'allow', proof: true }] })

  it('allows a caller that proved possession, denies a bearer token naming proof', () => {
    expect(policy.evaluate(post({ hasProof: true })).effect).toBe('allow')
    expect(policy.evaluate(post({ hasProof: false }))).toMatchObject({
      effect: 'deny',
      rule: 'bound',
      unmet: { condition: 'proof' },
    })
    expect(policy.evaluate(post()).unmet).toEqual({ condition: 'proof' })
  })

  it('proof: false in a deny rule refuses bearer tokens only', () => {
    const deny = Policy.fromJson({ default: 'allow', rules: [{ effect: 'deny', proof: false }] })
    expect(deny.evaluate(post({ hasProof: false })).effect).toBe('deny')
    expect(deny.evaluate(post({ hasProof: true })).effect).toBe('allow')
  })
})
