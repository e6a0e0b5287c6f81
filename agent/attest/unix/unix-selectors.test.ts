import { describe, expect, it } from 'vitest'
import type { CgroupEntry } from '../../../common/peercred/process-facts.js'
import {
  buildUnixSelectors,
  splitDeletedSuffix,
  type UnixSelectorInput,
  unifiedCgroupPaths,
} from './unix-selectors.js'

const SHA = 'ab'.repeat(32)
const users = new Map([[1000, 'alice']])
const groups = new Map([
  [1000, 'alice'],
  [27, 'sudo'],
  [44, 'bad name'],
])

const base: UnixSelectorInput = {
  uid: 1000,
  gid: 1000,
  groups: [],
  userName: (uid) => users.get(uid),
  groupName: (gid) => groups.get(gid),
  exePath: '/usr/bin/tool',
  sha256: SHA,
  cgroupPaths: ['/user.slice/app.scope'],
}

const texts = (input: Partial<UnixSelectorInput>) => buildUnixSelectors({ ...base, ...input }).map(String)

describe('buildUnixSelectors', () => {
  it('builds every kind, sorted and distinct', () => {
    expect(texts({ groups: [27, 1000, 27] })).toEqual([
      'unix:cgroup:/user.slice/app.scope',
      'unix:gid:1000',
      'unix:group:alice',
      `unix:path:/usr/bin/tool`,
      `unix:sha256:${SHA}`,
      'unix:supplementary_gid:1000',
      'unix:supplementary_gid:27',
      'unix:supplementary_group:alice',
      'unix:supplementary_group:sudo',
      'unix:uid:1000',
      'unix:user:alice',
    ])
  })

  it.each<[string, Partial<UnixSelectorInput>, string[], string[]]>([
    ['unknown uid: no user', { uid: 5 }, ['unix:uid:5'], ['unix:user:alice']],
    ['unknown gid: no group', { gid: 6 }, ['unix:gid:6'], ['unix:group:alice']],
    [
      'unknown supplementary gid',
      { groups: [77] },
      ['unix:supplementary_gid:77'],
      ['unix:supplementary_group:'],
    ],
    [
      'a name the rules refuse',
      { groups: [44] },
      ['unix:supplementary_gid:44'],
      ['unix:supplementary_group:bad name'],
    ],
    ['no hash', { sha256: undefined }, ['unix:path:/usr/bin/tool'], ['unix:sha256:']],
    ['no cgroup', { cgroupPaths: [] }, ['unix:uid:1000'], ['unix:cgroup:']],
    ['cgroup outside our namespace', { cgroupPaths: ['/../x'] }, [], ['unix:cgroup:']],
    ['root cgroup', { cgroupPaths: ['/'] }, ['unix:cgroup:/'], []],
    ['path with a control character', { exePath: '/tmp/a\nb' }, ['unix:uid:1000'], ['unix:path:']],
    ['path with a space', { exePath: '/opt/my app/bin' }, ['unix:path:/opt/my app/bin'], []],
  ])('%s', (_what, input, present, absentPrefixes) => {
    const got = texts(input)
    for (const s of present) expect(got).toContain(s)
    for (const prefix of absentPrefixes) expect(got.filter((s) => s.startsWith(prefix))).toEqual([])
  })
})

describe('unifiedCgroupPaths', () => {
  const entry = (hierarchyId: number, controllers: string[], path: string): CgroupEntry => ({
    hierarchyId,
    controllers,
    path,
  })
  it.each<[string, CgroupEntry[], string[]]>([
    ['v2 only', [entry(0, [], '/system.slice/x.service')], ['/system.slice/x.service']],
    [
      'hybrid: v1 lines dropped',
      [entry(4, ['memory'], '/m'), entry(1, ['name=systemd'], '/s'), entry(0, [], '/')],
      ['/'],
    ],
    ['v1 only', [entry(4, ['memory'], '/m')], []],
    ['none', [], []],
  ])('%s', (_what, cgroups, expected) => {
    expect(unifiedCgroupPaths(cgroups)).toEqual(expected)
  })
})

describe('splitDeletedSuffix', () => {
  it.each([
    ['/usr/bin/tool', '/usr/bin/tool', false],
    ['/usr/bin/tool (deleted)', '/usr/bin/tool', true],
    ['/tmp/x (deleted) (deleted)', '/tmp/x (deleted)', true],
    ['/tmp/(deleted)', '/tmp/(deleted)', false],
  ])('%j → %j (suffix %s)', (target, path, hasSuffix) => {
    expect(splitDeletedSuffix(target)).toEqual({ path, hasSuffix })
  })
})
