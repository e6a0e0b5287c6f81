import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { findArgvProblems, tesseraInvocationsIn } from '../helpers/cli-help.js'
import { requireBuild } from '../helpers/processes.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const COMPOSE_TEXT = readFileSync(`${ROOT}docker-compose.yml`, 'utf8')
const DOCKERFILE_TEXT = readFileSync(`${ROOT}Dockerfile`, 'utf8')

/** One service of the compose file, read with the simple subset it is kept in. */
interface Service {
  /** `key: value` lines at four spaces' indent (flow values as written). */
  readonly keys: Map<string, string>
  /** Block-list items under a key (`volumes:` → `- a:b` lines). */
  readonly lists: Map<string, string[]>
  /** Block maps under a key (`environment:` → `NAME: value` lines). */
  readonly maps: Map<string, Map<string, string>>
}

/**
 * Reads `services:` of docker-compose.yml line by line. The file stays in a subset this can read:
 * two-space indents, `command`/`entrypoint`/`test` as one-line JSON arrays, lists as `- item` lines,
 * maps as `key: value` lines (deeper levels are not read).
 */
function readServices(text: string): Map<string, Service> {
  const services = new Map<string, Service>()
  let inServices = false
  let current: Service | undefined
  let parent: string | undefined
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue
    if (!line.startsWith(' ')) inServices = line === 'services:'
    else if (inServices && /^ {2}[\w-]+:$/.test(line)) {
      current = { keys: new Map(), lists: new Map(), maps: new Map() }
      services.set(line.trim().slice(0, -1), current)
    } else if (current && inServices) {
      const key = /^ {4}([\w-]+):\s*(.*)$/.exec(line)
      const item = /^ {6}- (.*)$/.exec(line)
      const entry = /^ {6}([\w-]+):\s*(.*)$/.exec(line)
      if (key?.[1] !== undefined) {
        parent = key[1]
        current.keys.set(key[1], key[2] ?? '')
      } else if (item?.[1] !== undefined && parent !== undefined)
        current.lists.set(parent, [...(current.lists.get(parent) ?? []), item[1]])
      else if (entry?.[1] !== undefined && parent !== undefined) {
        const map = current.maps.get(parent) ?? new Map<string, string>()
        current.maps.set(parent, map.set(entry[1], entry[2] ?? ''))
      }
    }
  }
  return services
}

/** A one-line JSON array value (`["a", "b"]`); throws on anything else. */
function jsonArray(value: string | undefined, what: string): string[] {
  if (value === undefined || !value.startsWith('[')) throw new Error(`${what} must be a one-line JSON array`)
  return JSON.parse(value) as string[]
}

function dockerfileArray(instruction: string): string[] {
  const match = new RegExp(`^${instruction}\\s+(\\[.*\\])$`, 'm').exec(DOCKERFILE_TEXT)
  return jsonArray(match?.[1], `the Dockerfile's ${instruction}`)
}

/** Every `tessera` command line of the compose file (and its copy-paste comments) and the Dockerfile. */
function collectInvocations(services: Map<string, Service>): string[][] {
  const entrypoint = dockerfileArray('ENTRYPOINT')
  const invocations = [dockerfileArray('CMD')]
  for (const [name, service] of services) {
    const command = jsonArray(service.keys.get('command'), `${name}: command`)
    const own = service.keys.get('entrypoint')
    const effective = own === undefined ? entrypoint : jsonArray(own, `${name}: entrypoint`)
    if (effective.join(' ') === 'tessera') invocations.push(command)
    else if (effective.join(' ') === '/bin/sh -c')
      invocations.push(...tesseraInvocationsIn(command.join(' ')))
    else throw new Error(`${name}: unexpected entrypoint ${effective.join(' ')}`)
    const test = service.maps.get('healthcheck')?.get('test')
    const health = test === undefined ? [] : jsonArray(test, `${name}: healthcheck test`)
    if (health[0] === 'CMD' && health[1] === 'tessera') invocations.push(health.slice(2))
  }
  const pasteLines = COMPOSE_TEXT.split('\n').filter((l) => l.startsWith('#   '))
  invocations.push(...pasteLines.flatMap((l) => tesseraInvocationsIn(l.slice(1))))
  return invocations
}

/** The value after `flag` in an argv. */
function flagValue(argv: readonly string[], flag: string): string | undefined {
  const at = argv.indexOf(flag)
  return at < 0 ? undefined : argv[at + 1]
}

function hasComposePlugin(): boolean {
  return spawnSync('docker', ['compose', 'version'], { stdio: 'ignore' }).status === 0
}

describe('docker-compose.yml and Dockerfile', () => {
  const services = readServices(COMPOSE_TEXT)

  it('has the server, the agent and the demo workload', () => {
    expect([...services.keys()].sort()).toEqual(['agent', 'demo-workload', 'server'])
  })

  it('uses only commands and flags the real CLI accepts', async () => {
    requireBuild()
    const invocations = collectInvocations(services)
    expect(invocations.length).toBeGreaterThanOrEqual(9)
    const problems = (await Promise.all(invocations.map(findArgvProblems))).flat()
    expect(problems).toEqual([])
  })

  it('wires the agent to the server and the workload to the agent', () => {
    const server = jsonArray(services.get('server')?.keys.get('command'), 'server: command')
    const agent = jsonArray(services.get('agent')?.keys.get('command'), 'agent: command')
    const demo = services.get('demo-workload')
    expect(flagValue(agent, '--server-address')).toBe(`server:${flagValue(server, '--bind-port')}`)
    expect(flagValue(server, '--bind-address')).toBe('0.0.0.0')
    expect(demo?.keys.get('pid')).toBe('"service:agent"')
    const socket = flagValue(agent, '--socket') ?? ''
    const socketDir = socket.slice(0, socket.lastIndexOf('/'))
    expect(demo?.maps.get('environment')?.get('SPIFFE_ENDPOINT_SOCKET')).toBe(`unix://${socket}`)
    const agentVolume = services
      .get('agent')
      ?.lists.get('volumes')
      ?.find((v) => v.endsWith(`:${socketDir}`))
    const volumeName = agentVolume?.split(':')[0]
    expect(demo?.lists.get('volumes')).toContain(`${volumeName}:${socketDir}:ro`)
    expect(services.get('agent')?.lists.get('cap_add')).toEqual(['SYS_PTRACE'])
  })

  it('runs the image as a non-root user by default', () => {
    const users = [...DOCKERFILE_TEXT.matchAll(/^USER\s+(\S+)$/gm)].map((m) => m[1])
    expect(users.at(-1)).toBeDefined()
    expect(['root', '0', '0:0']).not.toContain(users.at(-1))
  })

  it.skipIf(!hasComposePlugin())('is valid for `docker compose config`', () => {
    const result = spawnSync('docker', ['compose', '-f', `${ROOT}docker-compose.yml`, 'config', '-q'], {
      env: { ...process.env, TESSERA_JOIN_TOKEN: 'test-token' },
      encoding: 'utf8',
    })
    expect(result.status, result.stderr).toBe(0)
  })

  if (!hasComposePlugin())
    console.log('docker compose is not installed here: `docker compose config` was not run on the file')
})
