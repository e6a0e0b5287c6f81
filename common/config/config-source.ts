import { readFileSync } from 'node:fs'
import { isAbsolute, resolve } from 'node:path'
import { IdentityError } from '../../lib/core/errors.js'
import type { Kind } from './config-fields.js'
import { findUnknownFileKeys, readConfigFile } from './config-file.js'

/** A value as it would appear in a config file; defaults are written this way too. */
export type RawValue = string | number | boolean | readonly string[] | readonly number[]

/** How one field of a config `C` is read, validated and defaulted. */
export interface FieldSpec<T, C> {
  readonly kind: Kind<Exclude<T, undefined>>
  /** Name in the file (and, kebab-cased, on the command line) when it differs from the field's. */
  readonly name?: string
  /** Commander's key for the flag when the flag is not `--<name>` (`socket` for `--socket`). */
  readonly flag?: string
  /**
   * Raw default, validated like any other value; or a function of the fields resolved so far
   * (every field set by a source, and defaulted fields earlier in schema order), which returns
   * undefined when what it needs is missing or invalid.
   */
  readonly default?: RawValue | ((resolved: Partial<C>) => RawValue | undefined)
  /** With no value and no default the field stays undefined instead of being required. */
  readonly isOptional?: boolean
}

/** One spec per field of `C`. Schema order matters for derived defaults. */
export type Schema<C> = { readonly [K in keyof C]-?: FieldSpec<C[K], C> }

/** Problems across fields (they stop the load) and warnings (they do not). */
export interface CheckResult {
  readonly problems: readonly string[]
  readonly warnings: readonly string[]
}

export interface ConfigDefinition<C> {
  readonly schema: Schema<C>
  /** Env var prefix, `TESSERA_SERVER_`; `<prefix>CONFIG` names the config file. */
  readonly envPrefix: string
  /** Cross-field rules, run on whatever fields are valid, so all problems come out at once. */
  readonly check?: (resolved: Partial<C>) => CheckResult
}

/** What a process hands its loader. Each part defaults to the real process's. */
export interface ConfigInput {
  /** Parsed command-line options (commander's `opts()`), `config` being the file path. */
  readonly flags?: Readonly<Record<string, unknown>>
  readonly env?: Readonly<Record<string, string | undefined>>
  /** Absolute; relative paths in every source are resolved against it. */
  readonly cwd?: string
  /** Reads the config file as UTF-8; tests pass an in-memory one. */
  readonly readFile?: (path: string) => string
}

export interface LoadedConfig<C> {
  readonly config: C
  readonly warnings: readonly string[]
  /** Absolute path of the config file read, if any. */
  readonly configFile: string | undefined
}

import { ConfigError } from '../../lib/core/config-error.js'

export { ConfigError }

/** Where a field's value can come from, highest precedence first. */
interface Layer {
  readonly isText: boolean
  lookup(field: FieldNames): unknown
  describe(field: FieldNames): string
}

interface FieldNames {
  readonly key: string
  readonly name: string
  readonly flag: string
  readonly envVar: string
}

type AnySpec = FieldSpec<unknown, Record<string, unknown>>

const CONFIG_FLAG = 'config'

function separateWords(name: string, separator: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, `$1${separator}$2`)
}

function describeFlag(key: string): string {
  return `--${separateWords(key, '-').toLowerCase()}`
}

function namesOf(schema: Record<string, AnySpec>, envPrefix: string): FieldNames[] {
  return Object.entries(schema).map(([key, spec]) => {
    const name = spec.name ?? key
    return { key, name, flag: spec.flag ?? name, envVar: envPrefix + separateWords(name, '_').toUpperCase() }
  })
}

function findUnknownInputs(
  input: Required<Pick<ConfigInput, 'flags' | 'env'>>,
  fields: FieldNames[],
  envPrefix: string,
) {
  const flags = new Set([CONFIG_FLAG, ...fields.map((f) => f.flag)])
  const envVars = new Set([`${envPrefix}CONFIG`, ...fields.map((f) => f.envVar)])
  const unknownFlags = Object.entries(input.flags)
    .filter(([key, value]) => value !== undefined && !flags.has(key))
    .map(([key]) => `${describeFlag(key)}: unknown option`)
  const unknownEnv = Object.keys(input.env)
    .filter((key) => key.startsWith(envPrefix) && !envVars.has(key))
    .map((key) => `${key}: unknown variable`)
  return [...unknownFlags, ...unknownEnv]
}

function makeLayers(flags: Record<string, unknown>, env: ConfigInput['env'], file: FileLayer): Layer[] {
  return [
    { isText: true, lookup: (f) => flags[f.flag], describe: (f) => describeFlag(f.flag) },
    { isText: true, lookup: (f) => env?.[f.envVar] || undefined, describe: (f) => f.envVar },
    { isText: false, lookup: (f) => file.values[f.name], describe: () => `config file ${file.path}` },
  ]
}

interface FileLayer {
  readonly path: string | undefined
  readonly values: Record<string, unknown>
}

/** The state of one load: what is resolved so far and every problem found. */
interface Resolution {
  readonly schema: Readonly<Record<string, AnySpec>>
  readonly cwd: string
  readonly resolved: Record<string, unknown>
  readonly problems: string[]
}

/** Parses `raw` with the field's kind; a problem is recorded with where the value came from. */
function settle(field: FieldNames, source: { raw: unknown; isText: boolean; from: string }, out: Resolution) {
  const spec = out.schema[field.key] as AnySpec
  try {
    out.resolved[field.key] = spec.kind(source.raw, { cwd: out.cwd, isText: source.isText })
  } catch (err) {
    if (!(err instanceof IdentityError)) throw err
    out.problems.push(`${field.name}: ${err.message} (from ${source.from})`)
  }
}

/** Parses every field some layer sets; returns the fields no layer sets. */
function resolveSetFields(fields: readonly FieldNames[], layers: readonly Layer[], out: Resolution) {
  const missing: FieldNames[] = []
  for (const field of fields) {
    const layer = layers.find((l) => l.lookup(field) !== undefined)
    if (layer === undefined) missing.push(field)
    else settle(field, { raw: layer.lookup(field), isText: layer.isText, from: layer.describe(field) }, out)
  }
  return missing
}

/** Fills the fields left unset from their defaults, in schema order. */
function applyDefaults(missing: readonly FieldNames[], out: Resolution): void {
  for (const field of missing) {
    const spec = out.schema[field.key] as AnySpec
    const raw = typeof spec.default === 'function' ? spec.default(out.resolved) : spec.default
    if (raw !== undefined) settle(field, { raw, isText: false, from: 'the default' }, out)
    else if (spec.isOptional !== true && spec.default === undefined) {
      const where = `${describeFlag(field.flag)}, ${field.envVar} or "${field.name}" in the config file`
      out.problems.push(`${field.name}: is required (set ${where})`)
    }
  }
}

/** Freezes plain objects and arrays all the way down; value objects are immutable already. */
export function deepFreeze<T>(value: T): T {
  if (
    Array.isArray(value) ||
    (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype)
  ) {
    for (const item of Object.values(value)) deepFreeze(item)
    Object.freeze(value)
  }
  return value
}

/**
 * Loads one process's configuration: the JSON file named by `--config` (or `<prefix>CONFIG`), then
 * env vars with the prefix, then flags, each overriding the one before; validates every field;
 * applies defaults; runs the cross-field check. Relative paths become absolute against `cwd`.
 * @throws ConfigError (ERR_CONFIG_INVALID) listing every problem found, unknown keys included
 */
export function loadConfig<C>(definition: ConfigDefinition<C>, input: ConfigInput = {}): LoadedConfig<C> {
  const cwd = input.cwd ?? process.cwd()
  if (!isAbsolute(cwd)) throw new ConfigError([`cwd: must be an absolute path`])
  const flags = input.flags ?? {}
  const env = input.env ?? process.env
  const schema = definition.schema as unknown as Record<string, AnySpec>
  const fields = namesOf(schema, definition.envPrefix)
  const problems = findUnknownInputs({ flags, env }, fields, definition.envPrefix)
  const fileName = flags[CONFIG_FLAG] ?? env[`${definition.envPrefix}CONFIG`]
  const path = typeof fileName === 'string' && fileName !== '' ? resolve(cwd, fileName) : undefined
  const values = path === undefined ? {} : readConfigFile(path, input.readFile ?? readUtf8, problems)
  if (path !== undefined)
    problems.push(...findUnknownFileKeys(path, values, new Set(fields.map((f) => f.name))))
  const out: Resolution = { schema, cwd, resolved: {}, problems }
  applyDefaults(resolveSetFields(fields, makeLayers(flags, env, { path, values }), out), out)
  const checked = definition.check?.(out.resolved as Partial<C>) ?? { problems: [], warnings: [] }
  problems.push(...checked.problems)
  if (problems.length > 0) throw new ConfigError(problems)
  const inOrder = fields.filter((f) => f.key in out.resolved).map((f) => [f.key, out.resolved[f.key]])
  const config = deepFreeze(Object.fromEntries(inOrder)) as C
  return Object.freeze({ config, warnings: Object.freeze([...checked.warnings]), configFile: path })
}

function readUtf8(path: string): string {
  return readFileSync(path, 'utf8')
}
