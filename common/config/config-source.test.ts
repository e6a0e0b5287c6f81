import { describe, expect, it } from 'vitest'
import { isIdentityError } from '../../lib/core/errors.js'
import { durationKind, integerKind, listKind, pathKind, stringKind } from './config-fields.js'
import {
  type ConfigDefinition,
  ConfigError,
  type ConfigInput,
  deepFreeze,
  loadConfig,
  type Schema,
} from './config-source.js'

interface Demo {
  readonly home: string
  readonly port: number
  readonly name: string
  readonly socket: string
  readonly ttlMs: number
  readonly tags: readonly string[]
  readonly note: string | undefined
}

const SCHEMA: Schema<Demo> = {
  home: { kind: pathKind(), default: './home' },
  port: { kind: integerKind({ min: 0, max: 65_535 }), default: 80 },
  name: { kind: stringKind() },
  socket: { kind: pathKind(), flag: 'sock', default: (c) => (c.home ? `${c.home}/s.sock` : undefined) },
  ttlMs: { kind: durationKind(), name: 'ttl', default: '1h' },
  tags: { kind: listKind(stringKind()), flag: 'tag', default: [] },
  note: { kind: stringKind(), isOptional: true },
}
const DEFINITION: ConfigDefinition<Demo> = { schema: SCHEMA, envPrefix: 'DEMO_' }
const CWD = '/work/dir'

function files(contents: Record<string, string>): (path: string) => string {
  return (path) => {
    const text = contents[path]
    if (text === undefined) throw Object.assign(new Error('no such file'), { code: 'ENOENT' })
    return text
  }
}

function load(input: ConfigInput) {
  return loadConfig(DEFINITION, { cwd: CWD, env: {}, flags: {}, ...input })
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

describe('loadConfig', () => {
  it('applies defaults, derived ones after what they derive from', () => {
    const { config } = load({ flags: { name: 'x' } })
    expect(config).toEqual({
      home: '/work/dir/home',
      port: 80,
      name: 'x',
      socket: '/work/dir/home/s.sock',
      ttlMs: 3_600_000,
      tags: [],
    })
  })

  it('takes the file, then env, then flags', () => {
    const readFile = files({
      '/work/dir/c.json': JSON.stringify({ name: 'file', port: 1, ttl: '1m', home: 'f' }),
    })
    const env = { DEMO_CONFIG: 'c.json', DEMO_PORT: '2', DEMO_TTL: '2m' }
    const { config, configFile } = load({ readFile, env, flags: { port: '3' } })
    expect(config).toMatchObject({ name: 'file', port: 3, ttlMs: 120_000, home: '/work/dir/f' })
    expect(configFile).toBe('/work/dir/c.json')
  })

  it('takes --config over the env var naming the file', () => {
    const readFile = files({ '/a.json': '{"name":"a"}', '/b.json': '{"name":"b"}' })
    const { config } = load({ readFile, env: { DEMO_CONFIG: '/a.json' }, flags: { config: '/b.json' } })
    expect(config.name).toBe('b')
  })

  it('derives defaults from the value that won', () => {
    const { config } = load({ flags: { name: 'x', home: '/h' } })
    expect(config.socket).toBe('/h/s.sock')
  })

  it('reads repeated flags and comma lists under their own names', () => {
    expect(load({ flags: { name: 'x', tag: ['a', 'b'] } }).config.tags).toEqual(['a', 'b'])
    expect(load({ flags: { name: 'x' }, env: { DEMO_TAGS: 'a,b' } }).config.tags).toEqual(['a', 'b'])
  })

  it('treats an empty env var as unset', () => {
    expect(load({ flags: { name: 'x' }, env: { DEMO_PORT: '' } }).config.port).toBe(80)
  })

  it('reports every problem at once, from every source', () => {
    const readFile = files({
      '/c.json': JSON.stringify({ port: 'eighty', colour: 'red', trust_domain: 'x' }),
    })
    const problems = problemsOf({
      readFile,
      flags: { config: '/c.json', sock: '', bogus: 1 },
      env: { DEMO_TTL: '1y', DEMO_TYPO: '1' },
    })
    const prefixes = problems.map((p) => p.split(':')[0])
    expect(prefixes).toEqual(
      expect.arrayContaining([
        '--bogus',
        'DEMO_TYPO',
        'config file /c.json',
        'port',
        'name',
        'socket',
        'ttl',
      ]),
    )
    expect(problems.filter((p) => p.includes('unknown key'))).toHaveLength(2)
  })

  it('throws one ConfigError with code ERR_CONFIG_INVALID, a line per problem', () => {
    try {
      load({ flags: { port: -1 } })
      expect.unreachable()
    } catch (err) {
      expect(isIdentityError(err, 'ERR_CONFIG_INVALID')).toBe(true)
      expect(err).toBeInstanceOf(ConfigError)
      const { problems, message } = err as ConfigError
      expect(problems).toHaveLength(2)
      expect(message.split('\n')).toHaveLength(3)
      expect(Object.isFrozen(problems)).toBe(true)
    }
  })

  it.each([
    ['missing', undefined],
    ['not JSON', '{"name":'],
    ['not an object', '["name"]'],
  ])('reports a config file that is %s', (_, text) => {
    const readFile = files(text === undefined ? {} : { '/c.json': text })
    const problems = problemsOf({ readFile, flags: { config: '/c.json', name: 'x' } })
    expect(problems).toHaveLength(1)
    expect(problems[0]?.startsWith('config file /c.json:')).toBe(true)
  })

  it('ignores flags left undefined (options not given)', () => {
    expect(load({ flags: { name: 'x', port: undefined, other: undefined } }).config.port).toBe(80)
  })

  it('runs the cross-field check and keeps its warnings', () => {
    const definition: ConfigDefinition<Demo> = {
      ...DEFINITION,
      check: (c) => ({
        problems: c.port === 0 ? ['port: must not be 0 here'] : [],
        warnings: c.port === 1 ? ['port 1 is odd'] : [],
      }),
    }
    expect(loadConfig(definition, { cwd: CWD, env: {}, flags: { name: 'x', port: 1 } }).warnings).toEqual([
      'port 1 is odd',
    ])
    expect(() => loadConfig(definition, { cwd: CWD, env: {}, flags: { name: 'x', port: 0 } })).toThrow(
      ConfigError,
    )
  })

  it('refuses a relative cwd', () => {
    expect(() => loadConfig(DEFINITION, { cwd: 'rel', env: {}, flags: { name: 'x' } })).toThrow(ConfigError)
  })

  it('returns a deep-frozen result', () => {
    const loaded = load({ flags: { name: 'x', tag: ['a'] } })
    expect(Object.isFrozen(loaded)).toBe(true)
    expect(Object.isFrozen(loaded.config)).toBe(true)
    expect(Object.isFrozen(loaded.config.tags)).toBe(true)
    expect(Object.isFrozen(loaded.warnings)).toBe(true)
  })
})

describe('deepFreeze', () => {
  it('freezes plain objects and arrays, leaving class instances alone', () => {
    class Box {
      value = 1
    }
    const value = deepFreeze({ a: { b: [{ c: 1 }] }, box: new Box() })
    expect(Object.isFrozen(value.a.b[0])).toBe(true)
    expect(Object.isFrozen(value.box)).toBe(false)
  })
})
