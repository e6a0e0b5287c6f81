import { describe, expect, it } from 'vitest'
import { ConfigError, type ConfigInput } from '../common/config/config-source.js'
import { TrustDomain } from '../lib/core/trust-domain.js'
import { type AgentConfig, loadAgentConfig } from './agent-config.js'

const CWD = '/home/op'

function load(input: ConfigInput): AgentConfig {
  return loadAgentConfig({ cwd: CWD, env: {}, flags: {}, ...input })
}

function problemsOf(input: ConfigInput): readonly string[] {
  try {
    load(input)
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  return []
}

function fileWith(content: object): Pick<ConfigInput, 'readFile'> & { flags: { config: string } } {
  return { readFile: () => JSON.stringify(content), flags: { config: 'agent.json' } }
}

describe('loadAgentConfig defaults', () => {
  it('has every default, the paths inside the data dir, all absolute', () => {
    const config = load({})
    expect({ ...config, trustDomain: config.trustDomain.name }).toEqual({
      dataDir: '/home/op/.tessera/agent',
      serverAddress: '127.0.0.1:8081',
      socketPath: '/home/op/.tessera/agent/public/api.sock',
      trustDomain: 'tessera.local',
      insecureBootstrap: false,
      logLevel: 'info',
      logFormat: 'json',
      auditLogPath: '/home/op/.tessera/agent/audit.log',
      auditCheckpointLines: 1000,
      auditCheckpointIntervalMs: 60_000,
      hashSizeLimitBytes: 512 * 1024 * 1024,
      allowUnauthenticatedVerifiers: false,
      maxConnectionsPerUid: 1024,
      connectionIdleTimeoutMs: 300_000,
      auditSummaryWindowMs: 10_000,
      beginTaskPerSecond: 5,
      unsafeBenchNoBindingChecks: false,
      warnings: [],
      configFile: undefined,
    })
    expect(config.joinToken).toBeUndefined()
    expect(config.trustBundlePath).toBeUndefined()
  })

  it('derives the default paths from the data dir given', () => {
    const config = load({ env: { TESSERA_AGENT_DATA_DIR: '/var/lib/tessera' } })
    expect([config.socketPath, config.auditLogPath]).toEqual([
      '/var/lib/tessera/public/api.sock',
      '/var/lib/tessera/audit.log',
    ])
  })

  it('is frozen', () => {
    expect(Object.isFrozen(load({}))).toBe(true)
  })
})

/** [field, flag key, env var, file key, text, expected value, a bad text]. */
const FIELDS = [
  ['dataDir', 'dataDir', 'TESSERA_AGENT_DATA_DIR', 'dataDir', 'a', '/home/op/a', ''],
  [
    'serverAddress',
    'serverAddress',
    'TESSERA_AGENT_SERVER_ADDRESS',
    'serverAddress',
    'srv:9',
    'srv:9',
    'srv',
  ],
  [
    'socketPath',
    'socket',
    'TESSERA_AGENT_SOCKET_PATH',
    'socketPath',
    'w.sock',
    '/home/op/w.sock',
    `/${'a'.repeat(107)}`,
  ],
  ['joinToken', 'joinToken', 'TESSERA_AGENT_JOIN_TOKEN', 'joinToken', 'tok-123', 'tok-123', 'a b'],
  [
    'trustBundlePath',
    'trustBundle',
    'TESSERA_AGENT_TRUST_BUNDLE_PATH',
    'trustBundlePath',
    'b.pem',
    '/home/op/b.pem',
    '\0',
  ],
  [
    'insecureBootstrap',
    'insecureBootstrap',
    'TESSERA_AGENT_INSECURE_BOOTSTRAP',
    'insecureBootstrap',
    'true',
    true,
    'on',
  ],
  ['logLevel', 'logLevel', 'TESSERA_AGENT_LOG_LEVEL', 'logLevel', 'warn', 'warn', 'verbose'],
  ['logFormat', 'logFormat', 'TESSERA_AGENT_LOG_FORMAT', 'logFormat', 'text', 'text', 'pretty'],
  ['auditLogPath', 'auditLogPath', 'TESSERA_AGENT_AUDIT_LOG_PATH', 'auditLogPath', '/a.log', '/a.log', ''],
  [
    'hashSizeLimitBytes',
    'hashSizeLimitBytes',
    'TESSERA_AGENT_HASH_SIZE_LIMIT_BYTES',
    'hashSizeLimitBytes',
    '0',
    0,
    '1MiB',
  ],
  [
    'allowUnauthenticatedVerifiers',
    'allowUnauthenticatedVerifiers',
    'TESSERA_AGENT_ALLOW_UNAUTHENTICATED_VERIFIERS',
    'allowUnauthenticatedVerifiers',
    'false',
    false,
    'maybe',
  ],
] as const

function asJson(field: string, text: string): unknown {
  if (field === 'hashSizeLimitBytes') return Number(text)
  if (field === 'insecureBootstrap' || field === 'allowUnauthenticatedVerifiers') return text === 'true'
  return text
}

describe.each(FIELDS)('%s', (field, flag, envVar, fileKey, text, expected, bad) => {
  it('is read from a flag', () => {
    expect(load({ flags: { [flag]: text } })[field]).toEqual(expected)
  })

  it('is read from the env', () => {
    expect(load({ env: { [envVar]: text } })[field]).toEqual(expected)
  })

  it('is read from the config file', () => {
    expect(load(fileWith({ [fileKey]: asJson(field, text) }))[field]).toEqual(expected)
  })

  it('is refused when malformed, and the problem names it', () => {
    const problems = problemsOf({ flags: { [flag]: bad } })
    expect(problems.some((p) => p.startsWith(`${fileKey}:`))).toBe(true)
  })
})

describe('trustDomain', () => {
  it('is read as a TrustDomain', () => {
    const config = load({ env: { TESSERA_AGENT_TRUST_DOMAIN: 'example.org' } })
    expect(config.trustDomain.equals(TrustDomain.parse('example.org'))).toBe(true)
  })
})

describe('cross-field rules', () => {
  it('refuses a trust bundle and insecure bootstrap together', () => {
    expect(problemsOf({ flags: { trustBundle: 'b.pem', insecureBootstrap: true } })).toHaveLength(1)
  })

  it('accepts neither: whether one is needed is the agent’s check at start', () => {
    expect(load({}).insecureBootstrap).toBe(false)
  })

  it.each([
    ['insecure bootstrap', { insecureBootstrap: true }],
    ['hashing disabled', { hashSizeLimitBytes: '-1' }],
  ])('warns of %s', (_, flags) => {
    expect(load({ flags }).warnings).toHaveLength(1)
  })

  it('never echoes a refused join token in its problem', () => {
    const problems = problemsOf({ flags: { joinToken: 'secret value' } })
    expect(problems.join('\n')).not.toContain('secret')
  })
})

describe('precedence', () => {
  it('takes flags over env over the file', () => {
    const file = fileWith({ serverAddress: 'file:1', joinToken: 'file-token', logLevel: 'warn' })
    const env = { TESSERA_AGENT_SERVER_ADDRESS: 'env:2', TESSERA_AGENT_JOIN_TOKEN: 'env-token' }
    const config = load({ ...file, env, flags: { ...file.flags, serverAddress: 'flag:3' } })
    expect([config.serverAddress, config.joinToken, config.logLevel]).toEqual(['flag:3', 'env-token', 'warn'])
    expect(config.configFile).toBe('/home/op/agent.json')
  })
})
