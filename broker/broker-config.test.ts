import { describe, expect, it } from 'vitest'
import { ConfigError } from '../common/config/config-source.js'
import { loadBrokerConfig } from './broker-config.js'

const base = { listen: '127.0.0.1:8081', routes: '/etc/tessera/routes.json', audience: ['broker'] }

function problemsOf(flags: Record<string, unknown>, env: Record<string, string> = {}): readonly string[] {
  try {
    loadBrokerConfig({ flags, env, cwd: '/work' })
    return []
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
}

describe('loadBrokerConfig', () => {
  it('applies the defaults', () => {
    const config = loadBrokerConfig({ flags: base, env: {}, cwd: '/work' })
    expect(config).toMatchObject({
      listen: { host: '127.0.0.1', port: 8081 },
      routesPath: '/etc/tessera/routes.json',
      audience: ['broker'],
      allowedHosts: ['127.0.0.1', 'localhost'],
      tls: false,
      upstreamTimeoutMs: 30_000,
      maxResponseBytes: 64 * 1024 * 1024,
      auditLogPath: '-',
    })
    expect(config.secretsPath).toBeUndefined()
    expect(config.upstreamCaPath).toBeUndefined()
    expect(config.warnings).toEqual([])
  })

  it('takes TESSERA_BROKER_* variables, and reports every problem at once', () => {
    const fromEnv = loadBrokerConfig({
      flags: base,
      env: { TESSERA_BROKER_UPSTREAM_CA: '/etc/ca.pem', TESSERA_BROKER_MAX_RESPONSE_BYTES: '1000' },
      cwd: '/work',
    })
    expect(fromEnv).toMatchObject({ upstreamCaPath: '/etc/ca.pem', maxResponseBytes: 1000 })
    const problems = problemsOf({ listen: '0.0.0.0:8081', audience: [], upstreamTimeout: '0s' })
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining('routes'),
        expect.stringContaining('audience'),
        expect.stringContaining('allowedHosts'),
        expect.stringContaining('upstreamTimeout'),
      ]),
    )
  })

  it('warns when it listens beyond loopback without TLS', () => {
    const config = loadBrokerConfig({ flags: { ...base, listen: '10.0.0.5:8081' }, env: {}, cwd: '/work' })
    expect(config.warnings).toEqual([expect.stringContaining('without --tls')])
  })
})
