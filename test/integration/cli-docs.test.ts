import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import {
  type CommandHelp,
  findArgvProblems,
  flagsIn,
  listCommands,
  readHelp,
  tesseraInvocationsIn,
} from '../helpers/cli-help.js'
import { requireBuild } from '../helpers/processes.js'

const readDoc = (name: string) =>
  readFileSync(fileURLToPath(new URL(`../../docs/${name}`, import.meta.url)), 'utf8')
const DOC = readDoc('cli.md')

/** The sections of docs/cli.md headed `### \`tessera <command>\``, by command, with their text. */
function documentedCommands(markdown: string): Map<string, string> {
  const sections = new Map<string, string>()
  for (const chunk of markdown.split(/^(?=#{1,3} )/m)) {
    const heading = /^### `tessera ([^`]+)`\n/.exec(chunk)
    if (heading?.[1]) sections.set(heading[1], chunk.slice(heading[0].length))
  }
  return sections
}

/** The flags a command's `--help` offers, `--help` itself left out. */
function helpFlags(help: CommandHelp): string[] {
  return help.options.flatMap((o) => o.names).filter((n) => n.startsWith('--') && n !== '--help')
}

describe('docs/cli.md', () => {
  const documented = documentedCommands(DOC)

  it('lists only commands that exist, and only flags their --help lists', async () => {
    requireBuild()
    expect(documented.size).toBeGreaterThan(10)
    await listCommands() // reads every real command's --help, a few at a time, into the cache
    const problems: string[] = []
    for (const [command, text] of documented) {
      const help = await readHelp(command.split(' '))
      if (help === undefined) {
        problems.push(`tessera ${command}: no such command`)
        continue
      }
      const offered = new Set(helpFlags(help))
      for (const flag of new Set(flagsIn(text)))
        if (!offered.has(flag)) problems.push(`tessera ${command}: --help has no ${flag}`)
    }
    expect(problems).toEqual([])
  })

  it('documents every command of the CLI with every flag it has', async () => {
    requireBuild()
    const commands = (await listCommands()).filter((c) => c.subcommands.length === 0 && c.path.length > 0)
    const problems: string[] = []
    for (const help of commands) {
      const command = help.path.join(' ')
      const text = documented.get(command)
      if (text === undefined) {
        problems.push(`tessera ${command}: not in docs/cli.md`)
        continue
      }
      const listed = new Set(flagsIn(text))
      for (const flag of helpFlags(help))
        if (!listed.has(flag)) problems.push(`tessera ${command}: ${flag} not in docs/cli.md`)
    }
    expect(problems).toEqual([])
  })

  it.each(['cloud.md', 'helper.md', 'agents.md'])('uses only real commands and flags in %s', async (page) => {
    requireBuild()
    const invocations = tesseraInvocationsIn(readDoc(page))
    expect(invocations.length).toBeGreaterThanOrEqual(2)
    expect((await Promise.all(invocations.map(findArgvProblems))).flat()).toEqual([])
  })

  it('uses only real commands and flags in the two-hosts guide', async () => {
    requireBuild()
    const invocations = tesseraInvocationsIn(readDoc('two-hosts.md'))
    expect(invocations.length).toBeGreaterThanOrEqual(10)
    expect((await Promise.all(invocations.map(findArgvProblems))).flat()).toEqual([])
  })
})
