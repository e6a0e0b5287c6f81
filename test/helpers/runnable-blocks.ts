/** A shell block of a Markdown page marked `<!-- runnable … -->` on the line before its fence. */
export interface RunnableBlock {
  /** `README.md:32`: the page and the line of the fence. */
  readonly where: string
  /** The commands, `\`-continued lines joined, comments and blank lines left out. */
  readonly commands: readonly string[]
}

const MARK = /^<!--\s*runnable\b.*-->\s*$/
const SHELL_FENCE = /^```(?:sh|bash|shell)\s*$/

/** Every runnable shell block of `markdown`, in page order. */
export function runnableBlocksOf(markdown: string, page: string): RunnableBlock[] {
  const lines = markdown.split('\n')
  const blocks: RunnableBlock[] = []
  for (let i = 0; i + 1 < lines.length; i++) {
    if (!MARK.test(lines[i] ?? '') || !SHELL_FENCE.test(lines[i + 1] ?? '')) continue
    const body: string[] = []
    let j = i + 2
    for (; j < lines.length && !(lines[j] ?? '').startsWith('```'); j++) body.push(lines[j] ?? '')
    blocks.push({ where: `${page}:${i + 2}`, commands: commandsOf(body) })
    i = j
  }
  return blocks
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
