import { describe, expect, it } from 'vitest'
import { ConfigError } from './config-source.js'
import { loadWorkloadCliConfig } from './workload-endpoint.js'

const cwd = '/home/user/project'

function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn()
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  throw new Error('expected a ConfigError')
}

describe('loadWorkloadCliConfig', () => {
  it('takes --socket before SPIFFE_ENDPOINT_SOCKET', () => {
    const config = loadWorkloadCliConfig({
      flags: { socket: 'unix:///run/flag.sock' },
      env: { SPIFFE_ENDPOINT_SOCKET: 'unix:///run/env.sock' },
      cwd,
    })
    expect(config.endpoint.uri).toBe('unix:///run/flag.sock')
  })

  it.each([
    ['unix:///run/tessera/api.sock', 'unix:///run/tessera/api.sock'],
    ['/run/tessera/api.sock', 'unix:///run/tessera/api.sock'],
    ['tcp://127.0.0.1:8000', 'tcp://127.0.0.1:8000'],
  ])('reads SPIFFE_ENDPOINT_SOCKET=%s', (value, uri) => {
    expect(loadWorkloadCliConfig({ env: { SPIFFE_ENDPOINT_SOCKET: value }, cwd }).endpoint.uri).toBe(uri)
  })

  it('resolves a plain relative path against cwd', () => {
    expect(loadWorkloadCliConfig({ flags: { socket: 'run/api.sock' }, env: {}, cwd }).endpoint.uri).toBe(
      'unix:///home/user/project/run/api.sock',
    )
  })

  it("defaults to the agent's default socket and a 10 s timeout", () => {
    const config = loadWorkloadCliConfig({ env: {}, cwd })
    expect(config.endpoint.uri).toBe('unix:///home/user/project/.tessera/agent/public/api.sock')
    expect(config.timeoutMs).toBe(10_000)
  })

  it('ignores an empty SPIFFE_ENDPOINT_SOCKET', () => {
    const config = loadWorkloadCliConfig({ env: { SPIFFE_ENDPOINT_SOCKET: '' }, cwd })
    expect(config.endpoint.uri).toContain('.tessera/agent/public/api.sock')
  })

  it('reads --timeout as a duration', () => {
    expect(loadWorkloadCliConfig({ flags: { timeout: '1500ms' }, env: {}, cwd }).timeoutMs).toBe(1500)
    expect(loadWorkloadCliConfig({ flags: { timeout: '3' }, env: {}, cwd }).timeoutMs).toBe(3000)
  })

  it('reports every problem at once, naming where each value came from', () => {
    const problems = problemsOf(() =>
      loadWorkloadCliConfig({
        flags: { timeout: 'soon' },
        env: { SPIFFE_ENDPOINT_SOCKET: 'tcp://host:1' },
        cwd,
      }),
    )
    expect(problems).toHaveLength(2)
    expect(problems[0]).toMatch(/^socket: .*\(from SPIFFE_ENDPOINT_SOCKET\)$/)
    expect(problems[1]).toMatch(/^timeout: .*\(from --timeout\)$/)
  })

  it.each(['unix://foo/bar', 'tcp://127.0.0.1:8000/foo', 'http://127.0.0.1:1'])(
    'refuses --socket %s',
    (socket) => {
      expect(() => loadWorkloadCliConfig({ flags: { socket }, env: {}, cwd })).toThrow(
        expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }),
      )
    },
  )

  it('refuses a zero timeout', () => {
    expect(problemsOf(() => loadWorkloadCliConfig({ flags: { timeout: '0s' }, env: {}, cwd }))).toHaveLength(
      1,
    )
  })

  it('returns a frozen config', () => {
    expect(Object.isFrozen(loadWorkloadCliConfig({ env: {}, cwd }))).toBe(true)
  })
})
