import type { DestinationStream } from 'pino'
import { describe, expect, it } from 'vitest'
import { createLogger, type LoggerOptions, REDACT_CENSOR, REDACT_PATHS } from './logger.js'

/** An in-memory destination: every line pino writes. */
function memoryDestination(): DestinationStream & { lines: string[] } {
  const lines: string[] = []
  return { lines, write: (line: string) => void lines.push(line) }
}

function logTo(options: Partial<LoggerOptions> = {}) {
  const out = memoryDestination()
  const log = createLogger({ level: 'info', format: 'json', destination: out, ...options })
  const records = () => out.lines.map((line) => JSON.parse(line) as Record<string, unknown>)
  return { log, out, records }
}

const SECRET = 'S3CRET-do-not-log'

describe('createLogger', () => {
  it('writes JSON lines with an ISO time, a level name and no pid or hostname', () => {
    const { log, records } = logTo()
    log.info({ spiffeId: 'spiffe://td/a' }, 'Server started.')
    const [record] = records()
    expect(record).toMatchObject({ level: 'info', msg: 'Server started.', spiffeId: 'spiffe://td/a' })
    expect(new Date(record?.['time'] as string).toISOString()).toBe(record?.['time'])
    expect(record).not.toHaveProperty('pid')
    expect(record).not.toHaveProperty('hostname')
  })

  it('puts the process name on every line when given', () => {
    const { log, records } = logTo({ name: 'agent' })
    log.info('Agent started.')
    expect(records()[0]).toMatchObject({ name: 'agent' })
  })

  it('filters by level', () => {
    const { log, out } = logTo({ level: 'warn' })
    log.info('Not shown.')
    log.debug('Not shown.')
    log.warn('Shown.')
    log.error('Shown.')
    expect(out.lines).toHaveLength(2)
  })

  it('gives components child loggers carrying their name', () => {
    const { log, records } = logTo()
    log.child({ component: 'ca.rotator' }).info('CA rotated.')
    expect(records()[0]).toMatchObject({ component: 'ca.rotator', msg: 'CA rotated.' })
  })

  it.each([
    ['privateKey', { privateKey: SECRET }],
    ['nested privateKey', { ca: { privateKey: SECRET } }],
    ['key', { slot: { key: SECRET } }],
    ['PEM key', { keyPem: SECRET }],
    ['token', { token: SECRET }],
    ['join token', { config: { joinToken: SECRET } }],
    ['JWT', { jwt: SECRET }],
    ['JWT-SVID', { response: { jwtSvid: SECRET } }],
    ['SVID', { svid: { cert: 'x', key: SECRET } }],
    ['password', { db: { password: SECRET } }],
    ['authorization header', { req: { headers: { authorization: `Bearer ${SECRET}` } } }],
    ['gRPC authorization metadata', { metadata: { authorization: SECRET } }],
    ['WIT private JWK', { wit: { wit_svid_key: SECRET } }],
    ['WIT key in the agent cache', { cached: { keyJwk: SECRET } }],
    ['Workload-Proof-Token header', { headers: { 'workload-proof-token': SECRET } }],
    ['Workload-Identity-Token header', { headers: { 'workload-identity-token': SECRET } }],
  ])('redacts a %s', (_, fields) => {
    const { log, out, records } = logTo()
    log.info(fields, 'Something happened.')
    expect(out.lines.join('')).not.toContain(SECRET)
    expect(JSON.stringify(records()[0])).toContain(REDACT_CENSOR)
  })

  it('redacts in the text format too, and in child bindings', () => {
    const { log, out } = logTo({ format: 'text' })
    log.child({ component: 'agent.attest', token: SECRET }).info({ privateKey: SECRET }, 'Attested.')
    expect(out.lines).toHaveLength(1)
    expect(out.lines[0]).not.toContain(SECRET)
  })

  it('leaves the caller’s objects alone', () => {
    const { log } = logTo()
    const fields = { privateKey: SECRET }
    log.info(fields, 'Key loaded.')
    expect(fields.privateKey).toBe(SECRET)
  })

  it('covers each secret field at the top level and one level down', () => {
    expect(REDACT_PATHS).toEqual(expect.arrayContaining(['token', '*.token', 'privateKey', '*.privateKey']))
  })
})
