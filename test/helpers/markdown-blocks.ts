/** One fenced code block of a Markdown page. */
export interface FencedBlock {
  /** The info string's first word: `ts`, `sh`, `` (none). */
  readonly lang: string
  /** The line number (1-based) of the opening fence. */
  readonly line: number
  /** The lines between the fences. */
  readonly body: readonly string[]
  /** Whether the line before the fence is a `<!-- runnable … -->` mark. */
  readonly runnable: boolean
}

const FENCE = /^```(\S*)[^\S\n]*(?:\s.*)?$/
const RUNNABLE_MARK = /^<!--\s*runnable\b.*-->\s*$/

/**
 * The fenced code blocks of `markdown`, in page order (an unclosed block runs to the end).
 * @example
 * fencedBlocks('```ts\nconst a = 1\n```\n') // [{ lang: 'ts', line: 1, body: ['const a = 1'], runnable: false }]
 */
export function fencedBlocks(markdown: string): FencedBlock[] {
  const lines = markdown.split('\n')
  const blocks: FencedBlock[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i] ?? '')
    if (open === null) continue
    let j = i + 1
    while (j < lines.length && !(lines[j] ?? '').startsWith('```')) j++
    blocks.push({
      lang: open[1] ?? '',
      line: i + 1,
      body: lines.slice(i + 1, j),
      runnable: RUNNABLE_MARK.test(lines[i - 1] ?? ''),
    })
    i = j
  }
  return blocks
}
