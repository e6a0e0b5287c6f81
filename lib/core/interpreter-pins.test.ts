import { describe, expect, it } from 'vitest'
import { interpreterWarnings, isInterpreterName } from './interpreter-pins.js'
import { Selector } from './selector.js'

const HASH = 'a'.repeat(64)
const hashes = new Map([[HASH, '/usr/bin/python3.12']])
const warn = (...selectors: string[]) => interpreterWarnings(selectors.map(Selector.parse), hashes)

describe('isInterpreterName', () => {
  it.each([
    'node',
    'nodejs',
    'python',
    'python3',
    'python3.12',
    'bash',
    'sh',
    'dash',
    'zsh',
    'perl',
    'perl5.36',
    'ruby',
    'php',
    'php8.2',
    'java',
    'deno',
    'bun',
    'busybox',
  ])('%s is an interpreter', (name) => expect(isInterpreterName(name)).toBe(true))
  it.each(['sleep', 'tessera', 'nodes', 'shx', 'git', 'ssh', 'python-config-helper'])('%s is not', (name) =>
    expect(isInterpreterName(name)).toBe(false),
  )
})

describe('interpreterWarnings', () => {
  it('warns for an interpreter path or an interpreter hash, once per entry', () => {
    expect(warn('unix:uid:1000', 'unix:path:/usr/bin/node')).toHaveLength(1)
    expect(warn('unix:uid:1000', `unix:sha256:${HASH}`)[0]).toContain('/usr/bin/python3.12')
    expect(warn('unix:uid:1000', `unix:sha256:${HASH}`, 'unix:path:/usr/bin/python3.12')).toHaveLength(1)
  })

  it('says nothing for a compiled binary, a uid-only entry or other selector types', () => {
    expect(warn('unix:uid:1000', `unix:sha256:${'b'.repeat(64)}`, 'unix:path:/usr/bin/sleep')).toEqual([])
    expect(warn('unix:uid:1000')).toEqual([])
    expect(warn('spiffe_id:spiffe://td/tessera/agent/x')).toEqual([])
  })

  it('keeps the warning ASCII (it travels in gRPC trailers)', () => {
    expect(warn('unix:path:/bin/sh')[0]).toMatch(/^[\x20-\x7e]+$/)
  })
})
