import { describe, expect, it } from 'vitest'
import { ConfigError } from '../lib/core/config-error.js'
import { compileRoutes, routeFor } from './broker-routes.js'
import { upstreamTarget } from './route-forward.js'

const POLICY = { rules: [{ effect: 'allow', spiffeIds: ['spiffe://example.org/agents/*'] }] }
const sources = { file: new Map([['GITHUB', 'ghp_abcdefgh']]), env: { API_KEY: 'k3y-value' } }

function problemsOf(value: unknown): readonly string[] {
  try {
    compileRoutes(value, sources)
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  return []
}

describe('compileRoutes', () => {
  it('compiles header, query and basic credentials, longest prefix first', () => {
    const { routes, egress } = compileRoutes(
      {
        routes: [
          {
            prefix: '/github/',
            upstream: 'https://api.github.com',
            credential: { header: 'Authorization', template: 'Bearer {secret}', secret: 'GITHUB' },
            policy: POLICY,
          },
          {
            prefix: '/github/enterprise/',
            upstream: 'https://ghe.example/api/v3/',
            credential: { query: 'key', env: 'API_KEY' },
            policy: POLICY,
          },
          {
            prefix: '/basic/',
            upstream: 'https://basic.example/',
            credential: { basic: 'bot', secret: 'GITHUB' },
            policy: POLICY,
          },
        ],
        egress: [
          { spiffeIds: ['spiffe://example.org/agents/*'], hosts: ['API.github.com:443', '[::1]:8443'] },
        ],
      },
      sources,
    )
    expect(routes.map((r) => r.prefix)).toEqual(['/github/enterprise/', '/github/', '/basic/'])
    expect(routes[1]?.injection).toEqual({
      kind: 'header',
      name: 'authorization',
      value: 'Bearer ghp_abcdefgh',
    })
    expect(routes[2]?.injection.value).toBe(`Basic ${Buffer.from('bot:ghp_abcdefgh').toString('base64')}`)
    expect([...(egress[0]?.hosts ?? [])]).toEqual(['api.github.com:443', '[::1]:8443'])
    const enterprise = routeFor(routes, '/github/enterprise/repos')!
    expect(enterprise.prefix).toBe('/github/enterprise/')
    expect(upstreamTarget(enterprise, '/github/enterprise/repos?key=mine&a=1').path).toBe(
      '/api/v3/repos?a=1&key=k3y-value',
    )
    expect(routeFor(routes, '/gitlab/x')).toBeUndefined()
  })

  it('reports every problem of a malformed file at once, never quoting a secret', () => {
    const problems = problemsOf({
      extra: 1,
      routes: [
        {
          prefix: 'github',
          upstream: 'http://api.github.com/',
          credential: { header: 'Host', secret: 'GITHUB' },
        },
        {
          prefix: '/a/',
          upstream: 'https://u:p@a.example/',
          credential: { query: 'k', secret: 'MISSING' },
          policy: { rules: 3 },
        },
        {
          prefix: '/b/',
          upstream: 'https://b.example/',
          credential: { header: 'X-Key', env: 'NOT_SET' },
          policy: POLICY,
        },
      ],
      egress: [{ spiffeIds: [], hosts: ['no-port', '1.2.3.4:99999'] }],
    })
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining('extra: unknown key'),
        expect.stringContaining('routes[0].prefix'),
        expect.stringContaining('routes[0].upstream'),
        expect.stringContaining('routes[0].credential.header'),
        expect.stringContaining('routes[0].policy: is required'),
        expect.stringContaining('routes[1].upstream'),
        expect.stringContaining('routes[1].credential.secret: "MISSING" is not in the secrets file'),
        expect.stringContaining('routes[1].policy: rules: must be an array'),
        expect.stringContaining('routes[2].credential.env'),
        expect.stringContaining('egress[0].spiffeIds'),
        expect.stringContaining('egress[0].hosts[0]'),
        expect.stringContaining('egress[0].hosts[1]'),
      ]),
    )
    expect(problems.join('\n')).not.toContain('ghp_abcdefgh')
  })

  it('refuses a secret with a line break, which could forge a header', () => {
    expect(() =>
      compileRoutes(
        {
          routes: [
            {
              prefix: '/x/',
              upstream: 'https://x.example/',
              credential: { header: 'X-Key', env: 'EVIL' },
              policy: POLICY,
            },
          ],
        },
        { file: undefined, env: { EVIL: 'abcd\r\nX-Injected: 1' } },
      ),
    ).toThrow(/control character/)
  })

  it('marks egress hosts as Tessera gateways of one audience, and refuses a host that is both', () => {
    const ids = ['spiffe://example.org/agents/*']
    const { egress } = compileRoutes(
      {
        egress: [
          {
            spiffeIds: ids,
            hosts: ['127.0.0.1:8443'],
            identity: { attach: 'caller', audience: 'tool.local' },
          },
          { spiffeIds: ids, hosts: ['api.example:443'] },
        ],
      },
      sources,
    )
    expect(egress.map((r) => r.attachAudience)).toEqual(['tool.local', undefined])
    const problems = problemsOf({
      egress: [
        { spiffeIds: ids, hosts: ['a.example:80'], identity: { attach: 'broker', audience: 'a,b', x: 1 } },
        { spiffeIds: ids, hosts: ['t.example:80'], identity: { attach: 'caller', audience: 'tool.local' } },
        { spiffeIds: ids, hosts: ['t.example:80'] },
      ],
    })
    expect(problems).toEqual([
      expect.stringContaining('egress[0].identity.x: unknown key'),
      expect.stringContaining('egress[0].identity.attach: must be "caller"'),
      expect.stringContaining('egress[0].identity.audience'),
      expect.stringContaining('egress[2].hosts: t.example:80 is listed elsewhere'),
    ])
  })
})
