import { fencedBlocks } from './markdown-blocks.js'

/** A shell block of a Markdown page marked `<!-- runnable … -->` on the line before its fence. */
export interface RunnableBlock {
  /** `README.md:32`: the page and the line of the fence. */
  readonly where: string
  /** The commands, `\`-continued lines joined, comments and blank lines left out. */
  readonly commands: readonly string[]
}

const SHELL = new Set(['sh', 'bash', 'shell'])

/** Every runnable shell block of `markdown`, in page order. */
export function runnableBlocksOf(markdown: string, page: string): RunnableBlock[] {
  return fencedBlocks(markdown)
    .filter((block) => block.runnable && SHELL.has(block.lang))
    .map((block) => ({ where: `${page}:${block.line}`, commands: commandsOf(block.body) }))
}

function commandsOf(body: readonly string[]): string[] {
  const commands: string[] = []
  let pending = ''
  for (const line of body) {
    const joined = pending + line
    if (joined.endsWith('\\')) {
      pending = `${joined.slice(0, -1).trimEnd()} `
      continue
    }
    pending = ''
    const command = joined.replace(/\s+#\s.*$/, '').trim()
    if (command !== '' && !command.startsWith('#')) commands.push(command)
  }
  return commands
}
