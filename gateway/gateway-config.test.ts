import { describe, expect, it } from 'vitest'
import { ConfigError } from '../common/config/config-source.js'
import { loadGatewayConfig } from './gateway-config.js'

const base = { listen: '127.0.0.1:8080', upstream: 'unix:///run/tool/tool.sock', audience: ['tool'] }

function problemsOf(flags: Record<string, unknown>, env: Record<string, string> = {}): readonly string[] {
  try {
    loadGatewayConfig({ flags, env, cwd: '/work' })
    return []
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
}

describe('loadGatewayConfig', () => {
  it('applies the defaults', () => {
    const config = loadGatewayConfig({ flags: base, env: {}, cwd: '/work' })
    expect(config).toMatchObject({
      listen: { host: '127.0.0.1', port: 8080 },
      upstream: { transport: 'unix', path: '/run/tool/tool.sock' },
      audience: ['tool'],
      allowedOrigins: [],
      allowedHosts: ['127.0.0.1', 'localhost'],
      tls: false,
      upstreamTimeoutMs: 30_000,
      throttleFailures: 5,
      throttleDelayMs: 1_000,
      throttleMaxDelayMs: 300_000,
      auditLogPath: '-',
      auditCheckpointLines: 1000,
      auditCheckpointIntervalMs: 60_000,
      endpoint: { transport: 'unix', path: '/work/.tessera/agent/public/api.sock' },
    })
    expect(config.policyPath).toBeUndefined()
    expect(config.warnings).toEqual([expect.stringContaining('no policy')])
    expect(Object.isFrozen(config.allowedHosts)).toBe(true)
  })

  it('takes repeatable flags, TLS, a policy and the Workload API socket', () => {
    const config = loadGatewayConfig({
      flags: {
        ...base,
        listen: '[::1]:0',
        upstream: 'http://127.0.0.1:9000',
        allowOrigin: ['https://app.example/', 'http://localhost:3000'],
        host: ['tool.localhost'],
        tls: true,
        policy: 'policy.json',
        socket: 'unix:///run/tessera/api.sock',
      },
      env: { SPIFFE_ENDPOINT_SOCKET: 'unix:///elsewhere.sock' },
      cwd: '/work',
    })
    expect(config).toMatchObject({
      listen: { host: '::1', port: 0 },
      upstream: { transport: 'http', host: '127.0.0.1', port: 9000 },
      allowedOrigins: ['https://app.example', 'http://localhost:3000'],
      allowedHosts: ['tool.localhost'],
      tls: true,
      policyPath: '/work/policy.json',
      endpoint: { path: '/run/tessera/api.sock' },
    })
    expect(config.warnings).toEqual([])
  })

  it('reads TESSERA_GATEWAY_* and SPIFFE_ENDPOINT_SOCKET', () => {
    const config = loadGatewayConfig({
      flags: {},
      env: {
        TESSERA_GATEWAY_LISTEN: '127.0.0.1:9999',
        TESSERA_GATEWAY_UPSTREAM: 'unix:///t.sock',
        TESSERA_GATEWAY_AUDIENCE: 'a,b',
        TESSERA_GATEWAY_ALLOWED_ORIGINS: 'https://x.example',
        SPIFFE_ENDPOINT_SOCKET: 'unix:///run/api.sock',
      },
      cwd: '/work',
    })
    expect(config).toMatchObject({ audience: ['a', 'b'], allowedOrigins: ['https://x.example'] })
    expect(config.endpoint.uri).toBe('unix:///run/api.sock')
  })

  it('reports every problem at once', () => {
    const problems = problemsOf(
      {
        listen: '127.0.0.1',
        upstream: 'https://127.0.0.1:9000',
        allowOrigin: ['https://app.example/path'],
        host: ['localhost:80'],
        socket: 'tcp://localhost:1',
      },
      { TESSERA_GATEWAY_NOPE: '1' },
    )
    expect(problems).toEqual(
      expect.arrayContaining([
        'TESSERA_GATEWAY_NOPE: unknown variable',
        expect.stringMatching(/^listen: .*\(from --listen\)$/),
        expect.stringMatching(/^upstream: .*\(from --upstream\)$/),
        expect.stringMatching(/^audience: is required/),
        expect.stringMatching(/^allowedOrigins: .*\(from --allow-origin\)$/),
        expect.stringMatching(/^allowedHosts: .*\(from --host\)$/),
        expect.stringMatching(/^socket: .*\(from --socket\)$/),
      ]),
    )
  })

  it('needs --host when listening on every interface, and warns about plain HTTP beyond loopback', () => {
    expect(problemsOf({ ...base, listen: '0.0.0.0:8080' })).toEqual([
      expect.stringMatching(/^allowedHosts: is required/),
    ])
    const config = loadGatewayConfig({
      flags: { ...base, listen: '0.0.0.0:8080', host: ['tool.lan'] },
      env: {},
      cwd: '/',
    })
    expect(config.warnings).toEqual(expect.arrayContaining([expect.stringContaining('without --tls')]))
  })
})
