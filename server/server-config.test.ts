import { describe, expect, it } from 'vitest'
import { ConfigError, type ConfigInput } from '../common/config/config-source.js'
import { TrustDomain } from '../lib/core/trust-domain.js'
import { loadServerConfig, type ServerConfig } from './server-config.js'

const CWD = '/home/op'
const H = 3_600_000
const M = 60_000

function load(input: ConfigInput): ServerConfig {
  return loadServerConfig({ cwd: CWD, env: {}, flags: {}, ...input })
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
  return { readFile: () => JSON.stringify(content), flags: { config: '/etc/tessera/server.json' } }
}

describe('loadServerConfig defaults', () => {
  it('has every default, the paths inside the data dir, all absolute', () => {
    const config = load({})
    expect({ ...config, trustDomain: config.trustDomain.name }).toEqual({
      dataDir: '/home/op/.tessera/server',
      trustDomain: 'tessera.local',
      bindAddress: '127.0.0.1',
      bindPort: 8081,
      adminSocket: '/home/op/.tessera/server/admin.sock',
      adminUids: [],
      defaultX509SvidTtlMs: H,
      defaultJwtSvidTtlMs: 5 * M,
      minX509SvidTtlMs: M,
      minJwtSvidTtlMs: 30_000,
      caTtlMs: 24 * H,
      agentSvidTtlMs: H,
      joinTokenTtlMs: 10 * M,
      pendingTtlMs: 24 * H,
      denyTtlMs: H,
      maxPendingRequests: 1000,
      humanScopes: [],
      humanApprovalTimeoutMs: 120_000,
      taskAudiences: [],
      logLevel: 'info',
      logFormat: 'json',
      auditLogPath: '/home/op/.tessera/server/audit.log',
      auditCheckpointLines: 1000,
      auditCheckpointIntervalMs: 60_000,
      auditSummaryWindowMs: 10_000,
      dbPath: '/home/op/.tessera/server/datastore.sqlite3',
      oidcDiscoveryAddress: '127.0.0.1',
      oidcInsecureHttp: false,
      warnings: [],
      configFile: undefined,
    })
  })

  it('derives the default paths from the data dir given', () => {
    const config = load({ flags: { dataDir: 'state' } })
    expect([config.adminSocket, config.auditLogPath, config.dbPath]).toEqual([
      '/home/op/state/admin.sock',
      '/home/op/state/audit.log',
      '/home/op/state/datastore.sqlite3',
    ])
  })

  it('is deep-frozen', () => {
    const config = load({ flags: { adminUid: ['1000'] } })
    expect(Object.isFrozen(config)).toBe(true)
    expect(Object.isFrozen(config.adminUids)).toBe(true)
    expect(Object.isFrozen(config.warnings)).toBe(true)
  })
})

/** [field, flag key, env var, file key, text, expected value, a bad text]. */
const FIELDS = [
  ['dataDir', 'dataDir', 'TESSERA_SERVER_DATA_DIR', 'dataDir', 'd', '/home/op/d', ''],
  ['bindAddress', 'bindAddress', 'TESSERA_SERVER_BIND_ADDRESS', 'bindAddress', '::1', '::1', 'a b'],
  ['bindPort', 'bindPort', 'TESSERA_SERVER_BIND_PORT', 'bindPort', '0', 0, '65536'],
  [
    'adminSocket',
    'adminSocket',
    'TESSERA_SERVER_ADMIN_SOCKET',
    'adminSocket',
    '/run/a.sock',
    '/run/a.sock',
    `/${'a'.repeat(120)}`,
  ],
  ['adminUids', 'adminUid', 'TESSERA_SERVER_ADMIN_UIDS', 'adminUids', '1000,1001', [1000, 1001], '-1'],
  [
    'defaultX509SvidTtlMs',
    'defaultX509SvidTtl',
    'TESSERA_SERVER_DEFAULT_X509_SVID_TTL',
    'defaultX509SvidTtl',
    '30m',
    30 * M,
    '1y',
  ],
  [
    'defaultJwtSvidTtlMs',
    'defaultJwtSvidTtl',
    'TESSERA_SERVER_DEFAULT_JWT_SVID_TTL',
    'defaultJwtSvidTtl',
    '2m',
    2 * M,
    '0s',
  ],
  ['caTtlMs', 'caTtl', 'TESSERA_SERVER_CA_TTL', 'caTtl', '48h', 48 * H, 'h'],
  ['agentSvidTtlMs', 'agentSvidTtl', 'TESSERA_SERVER_AGENT_SVID_TTL', 'agentSvidTtl', '2h', 2 * H, '-1h'],
  ['joinTokenTtlMs', 'joinTokenTtl', 'TESSERA_SERVER_JOIN_TOKEN_TTL', 'joinTokenTtl', '1h', H, '1.5h'],
  ['logLevel', 'logLevel', 'TESSERA_SERVER_LOG_LEVEL', 'logLevel', 'debug', 'debug', 'trace'],
  ['logFormat', 'logFormat', 'TESSERA_SERVER_LOG_FORMAT', 'logFormat', 'text', 'text', 'yaml'],
  ['auditLogPath', 'auditLogPath', 'TESSERA_SERVER_AUDIT_LOG_PATH', 'auditLogPath', '-', '-', ''],
  ['dbPath', 'dbPath', 'TESSERA_SERVER_DB_PATH', 'dbPath', 'db.sqlite3', '/home/op/db.sqlite3', '\0'],
] as const

/** The file takes JSON types: numbers and lists as themselves. */
function asJson(field: string, text: string): unknown {
  if (field === 'bindPort') return Number(text)
  if (field === 'adminUids') return text.split(',').map(Number)
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
  it.each([
    [{ flags: { trustDomain: 'example.org' } }],
    [{ env: { TESSERA_SERVER_TRUST_DOMAIN: 'example.org' } }],
    [fileWith({ trustDomain: 'example.org' })],
  ])('is read as a TrustDomain (%#)', (input) => {
    expect(load(input).trustDomain.equals(TrustDomain.parse('example.org'))).toBe(true)
  })

  it('is refused when malformed', () => {
    expect(problemsOf({ flags: { trustDomain: 'Example.org' } })).toHaveLength(1)
  })
})

describe('precedence', () => {
  it('takes flags over env over the file', () => {
    const file = fileWith({ bindPort: 1, logLevel: 'warn', caTtl: '48h' })
    const env = { TESSERA_SERVER_BIND_PORT: '2', TESSERA_SERVER_LOG_LEVEL: 'debug' }
    const config = load({ ...file, env, flags: { ...file.flags, bindPort: '3' } })
    expect([config.bindPort, config.logLevel, config.caTtlMs]).toEqual([3, 'debug', 48 * H])
    expect(config.configFile).toBe('/etc/tessera/server.json')
  })
})

describe('problems', () => {
  it('lists every problem at once, unknown keys, variables and options included', () => {
    const file = fileWith({ bindPort: 'x', trust_domain: 'a', server: { trustDomain: 'b' } })
    const problems = problemsOf({
      ...file,
      env: { TESSERA_SERVER_LOG_LEVL: 'debug', TESSERA_SERVER_CA_TTL: 'soon' },
      flags: { ...file.flags, logFormat: 'xml', output: 'json' },
    })
    expect(problems).toHaveLength(7)
  })

  it.each([
    ['defaultX509SvidTtl', '24h'],
    ['defaultJwtSvidTtl', '25h'],
    ['agentSvidTtl', '48h'],
  ])('refuses %s not shorter than the CA TTL', (flag, ttl) => {
    const problems = problemsOf({ flags: { [flag]: ttl } })
    expect(problems).toHaveLength(1)
    expect(problems[0]?.startsWith(`${flag}:`)).toBe(true)
  })

  it.each([
    [{ defaultX509SvidTtl: '30s' }, 'defaultX509SvidTtl'],
    [{ defaultJwtSvidTtl: '10s' }, 'defaultJwtSvidTtl'],
    [{ defaultX509SvidTtl: '5m', minX509SvidTtl: '10m' }, 'defaultX509SvidTtl'],
  ])('refuses a default TTL below the floor entries are held to: %j', (flags, name) => {
    const problems = problemsOf({ flags })
    expect(problems).toHaveLength(1)
    expect(problems[0]?.startsWith(`${name}:`)).toBe(true)
  })

  it('lowers the floors when asked (tests use TTLs of seconds)', () => {
    const config = load({ flags: { minX509SvidTtl: '1s', minJwtSvidTtl: '1s', defaultJwtSvidTtl: '2s' } })
    expect([config.minX509SvidTtlMs, config.minJwtSvidTtlMs, config.defaultJwtSvidTtlMs]).toEqual([
      1000, 1000, 2000,
    ])
  })

  it('warns of an SVID TTL longer than CA TTL / 6, without refusing it', () => {
    const config = load({ flags: { caTtl: '6h', defaultX509SvidTtl: '1h1s', agentSvidTtl: '1h' } })
    expect(config.warnings).toHaveLength(1)
    expect(config.warnings[0]?.startsWith('defaultX509SvidTtl')).toBe(true)
  })

  it('caps that bound at the 7 days a long-lived CA keeps when replaced', () => {
    const config = load({ flags: { caTtl: '365d', defaultX509SvidTtl: '8d' } })
    expect(config.warnings).toHaveLength(1)
  })
})

describe('OIDC discovery settings', () => {
  const issuer = 'https://oidc.example.org'

  it('needs an issuer, and TLS files or plain HTTP chosen out loud, reporting each problem', () => {
    expect(problemsOf({ flags: { oidcDiscoveryPort: '8443' } })).toEqual([
      'oidcDiscoveryPort: needs jwtIssuer, the issuer URL the discovery document publishes',
      'oidcDiscoveryPort: needs oidcTlsCert and oidcTlsKey, or oidcInsecureHttp behind a TLS terminator',
    ])
    expect(
      problemsOf({ flags: { oidcDiscoveryPort: '0', jwtIssuer: issuer, oidcTlsCert: 'c.pem' } }),
    ).toEqual(['oidcTlsCert and oidcTlsKey: give both or neither'])
    const both = { oidcDiscoveryPort: '0', jwtIssuer: issuer, oidcTlsCert: 'c', oidcTlsKey: 'k' }
    expect(problemsOf({ flags: { ...both, oidcInsecureHttp: true } })).toHaveLength(1)
    expect(problemsOf({ flags: { oidcInsecureHttp: true } })).toHaveLength(1)
  })

  it('takes TLS files (made absolute) or plain HTTP with a warning', () => {
    const tls = load({
      flags: { oidcDiscoveryPort: '0', jwtIssuer: issuer, oidcTlsCert: 'c.pem', oidcTlsKey: 'k.pem' },
    })
    expect([tls.oidcTlsCertPath, tls.oidcTlsKeyPath, tls.warnings]).toEqual([
      '/home/op/c.pem',
      '/home/op/k.pem',
      [],
    ])
    const http = load({ flags: { oidcDiscoveryPort: '0', jwtIssuer: issuer, oidcInsecureHttp: true } })
    expect(http.warnings).toHaveLength(1)
    expect(load({ flags: { jwtIssuer: `${issuer}/td` } }).jwtIssuer).toBe(`${issuer}/td`)
  })

  it.each([
    'oidc.example.org',
    'https://oidc.example.org/',
    'https://oidc.example.org?x=1',
    'https://oidc.example.org#f',
    'https://user:pw@oidc.example.org',
    'ftp://oidc.example.org',
  ])('refuses the issuer %s', (bad) => {
    const problems = problemsOf({ flags: { jwtIssuer: bad } })
    expect(problems).toHaveLength(1)
    expect(problems[0]?.startsWith('jwtIssuer:')).toBe(true)
  })
})

describe('loadServerConfig task audiences', () => {
  it('takes repeated --task-audience patterns and refuses one with spaces', () => {
    const config = load({ flags: { taskAudience: ['https://*.example.com', 'spiffe://td/tools/*'] } })
    expect(config.taskAudiences).toEqual(['https://*.example.com', 'spiffe://td/tools/*'])
    expect(() => load({ flags: { taskAudience: ['two words'] } })).toThrow()
  })
})
