import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { ConfigError } from '../lib/core/config-error.js'
import { IdentityError } from '../lib/core/errors.js'
import { Policy } from '../lib/guard/policy.js'
import { compileIdPattern, type Matcher } from '../lib/guard/policy-pattern.js'
import { canonicalRequestPath } from '../lib/guard/request-path.js'
import { Scrubber } from './scrubber.js'
import type { Secrets } from './secrets-file.js'

/** How a route's credential goes upstream: one header, one query parameter, or basic auth (a header too). */
export type Injection =
  | Readonly<{ kind: 'header'; name: string; value: string }>
  | Readonly<{ kind: 'query'; name: string; value: string }>

/** One route: a path prefix of the broker, the HTTPS upstream it maps to, what is injected, who may call. */
export interface Route {
  readonly name: string
  /** `/github/`: always starts and ends with `/`. */
  readonly prefix: string
  /** `https://api.github.com/`: origin and base path (ending in `/`), nothing else. */
  readonly upstream: URL
  readonly injection: Injection
  readonly policy: Policy
  /** Replaces the injected value, in every form, in what comes back. */
  readonly scrubber: Scrubber
}

/** Which hosts one set of callers may reach through the forward proxy. */
export interface EgressRule {
  readonly ids: ReadonlyArray<Matcher>
  /** `host:port`, lower case; IPv6 literals in brackets. */
  readonly hosts: ReadonlySet<string>
  /**
   * Set when these hosts are Tessera gateways: the audience of the caller's own JWT-SVID the broker
   * presents to them (`"identity": {"attach": "caller", "audience": AUD}`).
   */
  readonly attachAudience?: string
}

/** A routes file, compiled. */
export interface BrokerRoutes {
  readonly routes: ReadonlyArray<Route>
  readonly egress: ReadonlyArray<EgressRule>
}

/** Where secrets come from: the secrets file, and the environment. */
export interface SecretSources {
  readonly file: Secrets | undefined
  readonly env: Readonly<Record<string, string | undefined>>
}

const TOP_KEYS = new Set(['description', 'routes', 'egress'])
const ROUTE_KEYS = new Set(['name', 'description', 'prefix', 'upstream', 'credential', 'policy'])
const CREDENTIAL_KEYS = new Set(['header', 'template', 'query', 'basic', 'secret', 'env'])
const EGRESS_KEYS = new Set(['name', 'description', 'spiffeIds', 'hosts', 'identity'])
const IDENTITY_KEYS = new Set(['attach', 'audience'])
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
/** Headers the broker owns: never a route's credential header. */
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'upgrade',
  'te',
  'trailer',
  'keep-alive',
  'proxy-authorization',
  'accept-encoding',
])

/** True when `text` has a control character (a line break, NUL) or DEL: it could forge header lines. */
function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x20 || c === 0x7f) return true
  }
  return false
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function unknownKeys(value: Record<string, unknown>, known: ReadonlySet<string>, where: string): string[] {
  return Object.keys(value)
    .filter((k) => !known.has(k))
    .map((k) => `${where}.${k}: unknown key`)
}

function checkPrefix(value: unknown, where: string, problems: string[]): string | undefined {
  if (typeof value !== 'string' || !value.startsWith('/') || !value.endsWith('/') || value === '/') {
    problems.push(`${where}.prefix: must be a path like "/github/" (starting and ending with /, not / alone)`)
    return undefined
  }
  try {
    if (canonicalRequestPath(value) === value) return value
  } catch {
    // reported below
  }
  problems.push(`${where}.prefix: must be a plain path (no encoding, dot or empty segments)`)
  return undefined
}

function checkUpstream(value: unknown, where: string, problems: string[]): URL | undefined {
  let url: URL | undefined
  try {
    url = typeof value === 'string' ? new URL(value) : undefined
  } catch {
    url = undefined
  }
  if (
    url === undefined ||
    url.protocol !== 'https:' ||
    url.username !== '' ||
    url.password !== '' ||
    url.search !== '' ||
    url.hash !== '' ||
    url.hostname === ''
  ) {
    problems.push(
      `${where}.upstream: must be https://host[:port]/[base/], without credentials, query or fragment`,
    )
    return undefined
  }
  if (!url.pathname.endsWith('/')) url.pathname = `${url.pathname}/`
  return url
}

/** The secret a credential names, from the secrets file (`secret`) or the environment (`env`). */
function secretOf(
  c: Record<string, unknown>,
  where: string,
  sources: SecretSources,
  problems: string[],
): string | undefined {
  const { secret, env } = c
  if ((secret === undefined) === (env === undefined)) {
    problems.push(
      `${where}: needs exactly one of "secret" (a name in the secrets file) or "env" (a variable)`,
    )
    return undefined
  }
  let value: string | undefined
  if (typeof secret === 'string') {
    value = sources.file?.get(secret)
    if (sources.file === undefined) problems.push(`${where}.secret: needs a secrets file (--secrets)`)
    else if (value === undefined)
      problems.push(`${where}.secret: ${JSON.stringify(secret)} is not in the secrets file`)
  } else if (typeof env === 'string') {
    value = sources.env[env]
    if (value === undefined || value === '')
      problems.push(`${where}.env: the environment variable ${JSON.stringify(env)} is not set`)
  } else problems.push(`${where}: "secret" and "env" must be strings`)
  if (value === undefined || value === '') return undefined
  // The value itself is never quoted: it is the secret.
  if (hasControl(value)) {
    problems.push(`${where}: the secret has a control character (a line break?), which could forge headers`)
    return undefined
  }
  if (value.length < 4) {
    problems.push(`${where}: the secret is shorter than 4 characters, too short to scrub safely`)
    return undefined
  }
  return value
}

function headerInjection(
  c: Record<string, unknown>,
  where: string,
  secret: string,
  problems: string[],
): { injection: Injection; scrubber: Scrubber } | undefined {
  const { header, template = '{secret}' } = c
  if (typeof header !== 'string' || !TOKEN.test(header) || RESERVED_HEADERS.has(header.toLowerCase())) {
    problems.push(`${where}.header: must be a header name the broker does not own (not Host, Connection, …)`)
    return undefined
  }
  if (typeof template !== 'string' || !template.includes('{secret}') || hasControl(template)) {
    problems.push(`${where}.template: must be a one-line string with {secret} in it, like "Bearer {secret}"`)
    return undefined
  }
  const value = template.replaceAll('{secret}', secret)
  return {
    injection: { kind: 'header', name: header.toLowerCase(), value },
    scrubber: new Scrubber([secret]),
  }
}

function compileCredential(
  value: unknown,
  where: string,
  sources: SecretSources,
  problems: string[],
): { injection: Injection; scrubber: Scrubber } | undefined {
  if (!isObject(value)) {
    problems.push(`${where}: must be an object: { "header" | "query" | "basic": …, "secret" | "env": … }`)
    return undefined
  }
  problems.push(...unknownKeys(value, CREDENTIAL_KEYS, where))
  const kinds = ['header', 'query', 'basic'].filter((k) => value[k] !== undefined)
  if (kinds.length !== 1) {
    problems.push(`${where}: needs exactly one of "header", "query" or "basic"`)
    return undefined
  }
  if (value['template'] !== undefined && kinds[0] !== 'header')
    problems.push(`${where}.template: goes only with "header"`)
  const secret = secretOf(value, where, sources, problems)
  if (secret === undefined) return undefined
  if (kinds[0] === 'header') return headerInjection(value, where, secret, problems)
  if (kinds[0] === 'query') {
    const name = value['query']
    if (typeof name !== 'string' || !/^[A-Za-z0-9_.~-]+$/.test(name)) {
      problems.push(`${where}.query: must be a parameter name (letters, digits, _ . ~ -)`)
      return undefined
    }
    return { injection: { kind: 'query', name, value: secret }, scrubber: new Scrubber([secret]) }
  }
  const user = value['basic']
  if (typeof user !== 'string' || user.includes(':') || hasControl(user)) {
    problems.push(`${where}.basic: must be the user name (without ":"); the secret is the password`)
    return undefined
  }
  const pair = `${user}:${secret}`
  const basic = `Basic ${Buffer.from(pair).toString('base64')}`
  return {
    injection: { kind: 'header', name: 'authorization', value: basic },
    scrubber: new Scrubber([secret], [pair]),
  }
}

function compilePolicy(value: unknown, where: string, problems: string[]): Policy | undefined {
  if (value === undefined) {
    problems.push(`${where}.policy: is required (who may call this route: { "rules": [...] })`)
    return undefined
  }
  try {
    return Policy.fromJson(value, `${where}.policy`)
  } catch (err) {
    if (err instanceof ConfigError) problems.push(...err.problems)
    else throw err
    return undefined
  }
}

function compileRoute(value: unknown, where: string, sources: SecretSources, problems: string[]) {
  if (!isObject(value)) {
    problems.push(`${where}: must be an object`)
    return undefined
  }
  problems.push(...unknownKeys(value, ROUTE_KEYS, where))
  const prefix = checkPrefix(value['prefix'], where, problems)
  const upstream = checkUpstream(value['upstream'], where, problems)
  const credential = compileCredential(value['credential'], `${where}.credential`, sources, problems)
  const policy = compilePolicy(value['policy'], where, problems)
  const name = typeof value['name'] === 'string' ? value['name'] : (prefix ?? where)
  if (prefix === undefined || upstream === undefined || credential === undefined || policy === undefined)
    return undefined
  return { name, prefix, upstream, policy, ...credential }
}

/**
 * A `host:port` an egress rule lists, lower case, IPv6 in brackets.
 * @throws ERR_CONFIG_INVALID
 */
export function normalizeHostPort(text: unknown): string {
  const match =
    typeof text === 'string' ? /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text) : null
  const port = Number(match?.[3])
  if (match === null || port < 1 || port > 65_535)
    throw new IdentityError('ERR_CONFIG_INVALID', 'must be host:port (an IPv6 address in brackets)')
  const host = (match[1] ?? match[2] ?? '').toLowerCase().replace(/\.$/, '')
  if (match[1] !== undefined && isIP(host) !== 6)
    throw new IdentityError('ERR_CONFIG_INVALID', 'must put only an IPv6 address in brackets')
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`
}

/** `"identity": {"attach": "caller", "audience": AUD}`: the audience, or undefined (problems noted). */
function compileIdentity(value: unknown, where: string, problems: string[]): string | undefined {
  if (value === undefined) return undefined
  if (!isObject(value)) {
    problems.push(`${where}: must be { "attach": "caller", "audience": "<the gateway's audience>" }`)
    return undefined
  }
  problems.push(...unknownKeys(value, IDENTITY_KEYS, where))
  if (value['attach'] !== 'caller') problems.push(`${where}.attach: must be "caller"`)
  const audience = value['audience']
  if (typeof audience !== 'string' || audience === '' || hasControl(audience) || audience.includes(',')) {
    problems.push(`${where}.audience: must be the gateway's audience (its --audience), one string`)
    return undefined
  }
  return audience
}

function compileEgress(value: unknown, where: string, problems: string[]): EgressRule | undefined {
  if (!isObject(value)) {
    problems.push(`${where}: must be an object`)
    return undefined
  }
  problems.push(...unknownKeys(value, EGRESS_KEYS, where))
  const { spiffeIds, hosts } = value
  const ids: Matcher[] = []
  const allowed = new Set<string>()
  if (!Array.isArray(spiffeIds) || spiffeIds.length === 0)
    problems.push(`${where}.spiffeIds: must be a non-empty array of SPIFFE ID patterns`)
  else
    spiffeIds.forEach((p: unknown, i) => {
      try {
        ids.push(compileIdPattern(p))
      } catch (err) {
        if (!(err instanceof IdentityError)) throw err
        problems.push(`${where}.spiffeIds[${i}]: ${err.message}`)
      }
    })
  if (!Array.isArray(hosts) || hosts.length === 0)
    problems.push(`${where}.hosts: must be a non-empty array of host:port`)
  else
    hosts.forEach((h: unknown, i) => {
      try {
        allowed.add(normalizeHostPort(h))
      } catch (err) {
        if (!(err instanceof IdentityError)) throw err
        problems.push(`${where}.hosts[${i}]: ${err.message}`)
      }
    })
  const attachAudience = compileIdentity(value['identity'], `${where}.identity`, problems)
  return { ids, hosts: allowed, ...(attachAudience !== undefined && { attachAudience }) }
}

/** A host listed both as a gateway and as a plain host (or as two gateways) is ambiguous: refused. */
function checkGatewayHosts(egress: ReadonlyArray<EgressRule>, problems: string[]): void {
  const seen = new Map<string, string | undefined>()
  egress.forEach((rule, i) => {
    for (const host of rule.hosts) {
      if (seen.has(host) && seen.get(host) !== rule.attachAudience)
        problems.push(
          `egress[${i}].hosts: ${host} is listed elsewhere with a different "identity" (a host is a Tessera gateway of one audience in every rule, or in none)`,
        )
      else seen.set(host, rule.attachAudience)
    }
  })
}

/**
 * Compiles a routes file's JSON: `{ "routes": [...], "egress": [...] }`.
 * @throws ConfigError (ERR_CONFIG_INVALID) listing every problem, each prefixed with `source`
 */
export function compileRoutes(value: unknown, sources: SecretSources, source = 'routes'): BrokerRoutes {
  const problems: string[] = []
  if (!isObject(value)) throw new ConfigError([`${source}: must be a JSON object`])
  problems.push(
    ...Object.keys(value)
      .filter((k) => !TOP_KEYS.has(k))
      .map((k) => `${k}: unknown key`),
  )
  const routesValue = value['routes'] ?? []
  const egressValue = value['egress'] ?? []
  if (!Array.isArray(routesValue)) problems.push('routes: must be an array')
  if (!Array.isArray(egressValue)) problems.push('egress: must be an array')
  const routes: Route[] = []
  const prefixes = new Set<string>()
  ;(Array.isArray(routesValue) ? routesValue : []).forEach((r: unknown, i) => {
    const route = compileRoute(r, `routes[${i}]`, sources, problems)
    if (route === undefined) return
    if (prefixes.has(route.prefix)) problems.push(`routes[${i}].prefix: ${route.prefix} is used twice`)
    prefixes.add(route.prefix)
    routes.push(Object.freeze(route))
  })
  const egress = (Array.isArray(egressValue) ? egressValue : []).flatMap((e: unknown, i) => {
    const rule = compileEgress(e, `egress[${i}]`, problems)
    return rule === undefined ? [] : [rule]
  })
  checkGatewayHosts(egress, problems)
  if (
    Array.isArray(routesValue) &&
    Array.isArray(egressValue) &&
    routesValue.length + egressValue.length === 0
  )
    problems.push('routes, egress: the file has neither a route nor an egress rule')
  if (problems.length > 0) throw new ConfigError(problems.map((p) => `${source}: ${p}`))
  // Longest prefix first, so /github/enterprise/ wins over /github/.
  routes.sort((a, b) => b.prefix.length - a.prefix.length)
  return { routes, egress }
}

/**
 * Reads and compiles a routes file.
 * @throws ConfigError (ERR_CONFIG_INVALID): unreadable, invalid JSON, or every problem found
 */
export function readRoutes(path: string, sources: SecretSources): BrokerRoutes {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError([`routes ${path}: cannot be read (${(err as NodeJS.ErrnoException).code})`])
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new ConfigError([`routes ${path}: is not valid JSON (${(err as Error).message})`])
  }
  return compileRoutes(value, sources, `routes ${path}`)
}

/** The route whose prefix the canonical path starts with (or is, without its last `/`). */
export function routeFor(routes: ReadonlyArray<Route>, path: string): Route | undefined {
  return routes.find((r) => path.startsWith(r.prefix) || path === r.prefix.slice(0, -1))
}
