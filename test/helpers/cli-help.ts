import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

/** One option line of a command's `--help`. */
export interface HelpOption {
  /** As printed: `--socket <path>`, `-h, --help`. */
  readonly term: string
  /** Its long and short names: `--socket`; `-h`, `--help`. */
  readonly names: readonly string[]
  readonly description: string
}

/** A command's `--help`, parsed. */
export interface CommandHelp {
  /** `['entry', 'create']`; `[]` for `tessera` itself. */
  readonly path: readonly string[]
  readonly description: string
  readonly options: readonly HelpOption[]
  /** Names of its subcommands (`help` left out). */
  readonly subcommands: readonly string[]
}

const DUMP = fileURLToPath(new URL('./cli-help-dump.mjs', import.meta.url))
let dumped: Promise<Record<string, string>> | undefined

/** What `tessera <path> --help` prints, for every command, from one process (cli-help-dump.mjs). */
function allHelp(): Promise<Record<string, string>> {
  dumped ??= promisify(execFile)(process.execPath, [DUMP], { maxBuffer: 64 << 20 }).then(
    ({ stdout }) => JSON.parse(stdout) as Record<string, string>,
  )
  return dumped
}

/** Every `--long-flag` in a text. */
export function flagsIn(text: string): string[] {
  return [...text.matchAll(/(?<![\w-])--[a-z][a-z0-9-]*/g)].map((m) => m[0])
}

/**
 * Every `tessera …` command line in a shell script or a Markdown text, as argv: from the word
 * `tessera` up to `;`, `&&`, `|`, `>`, `)`, a backtick or the end of the line; quotes stripped.
 */
export function tesseraInvocationsIn(text: string): string[][] {
  return [...text.matchAll(/(?:^|[\s;&|(`])tessera\s+([^;&|)>`\n]*)/g)].map((m) =>
    (m[1] ?? '')
      .trim()
      .split(/\s+/)
      .map((word) => word.replace(/^['"]|['"]$/g, '')),
  )
}

/** Entries of one help section: a term at two spaces' indent, its description, continuation lines. */
function sectionEntries(lines: readonly string[], title: string): Array<[string, string]> {
  const start = lines.indexOf(`${title}:`)
  if (start < 0) return []
  const entries: Array<[string, string]> = []
  for (const line of lines.slice(start + 1)) {
    if (!line.startsWith(' ')) break
    const entry = /^ {2}(\S.*?)(?: {2,}(.*))?$/.exec(line)
    const last = entries[entries.length - 1]
    if (entry) entries.push([entry[1] ?? '', entry[2] ?? ''])
    else if (last) last[1] = `${last[1]} ${line.trim()}`.trim()
  }
  return entries
}

/** Parses `tessera <path> --help`; undefined when its usage line is not that command's. */
export function parseHelp(path: readonly string[], text: string): CommandHelp | undefined {
  const lines = text.split('\n')
  const usage = ['Usage: tessera', ...path].join(' ')
  if (!lines[0]?.startsWith(`${usage} [options]`)) return undefined
  const description = lines.slice(1).find((l) => l.trim() !== '' && !l.endsWith(':')) ?? ''
  const options = sectionEntries(lines, 'Options').map(([term, desc]) => ({
    term,
    names: term.split(/[\s,]+/).filter((w) => w.startsWith('-')),
    description: desc,
  }))
  const subcommands = sectionEntries(lines, 'Commands')
    .map(([term]) => term.split(' ')[0] ?? '')
    .filter((name) => name !== 'help')
  return { path, description: description.trim(), options, subcommands }
}

/** `tessera <path> --help`, parsed; undefined when there is no such command. */
export async function readHelp(path: readonly string[]): Promise<CommandHelp | undefined> {
  const text = (await allHelp())[path.join(' ')]
  return text === undefined ? undefined : parseHelp(path, text)
}

/** Every command of the real CLI, groups included, found by walking its help from the top. */
export async function listCommands(): Promise<CommandHelp[]> {
  const found: CommandHelp[] = []
  let level: Array<readonly string[]> = [[]]
  while (level.length > 0) {
    const helps = await Promise.all(level.map(readHelp))
    const parsed = helps.filter((h): h is CommandHelp => h !== undefined)
    if (parsed.length !== level.length) throw new Error(`unreadable --help among: ${level.join('; ')}`)
    found.push(...parsed)
    level = parsed.flatMap((h) => h.subcommands.map((name) => [...h.path, name]))
  }
  return found
}

/** The problems with one `tessera …` argv: an unknown command, or flags its `--help` does not list. */
export async function findArgvProblems(argv: readonly string[]): Promise<string[]> {
  const firstFlag = argv.findIndex((token) => token.startsWith('-'))
  const path = firstFlag < 0 ? argv : argv.slice(0, firstFlag)
  const help = await readHelp(path)
  const shown = `tessera ${argv.join(' ')}`
  if (help === undefined) return [`${shown}: no command \`tessera ${path.join(' ')}\``]
  const isHelpOnly = argv.slice(path.length).every((token) => token === '--help' || token === '-h')
  if (help.subcommands.length > 0 && !isHelpOnly)
    return [`${shown}: \`${path.join(' ')}\` is a group, not a command`]
  const known = new Set(help.options.flatMap((o) => o.names))
  return argv
    .filter((token) => token.startsWith('-'))
    .map((token) => token.split('=')[0] ?? token)
    .filter((flag) => !known.has(flag))
    .map((flag) => `${shown}: \`tessera ${path.join(' ')}\` has no option ${flag}`)
}
