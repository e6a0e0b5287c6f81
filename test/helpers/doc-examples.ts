import { readdir, readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { fencedBlocks } from './markdown-blocks.js'

/** One ```ts block of a Markdown file. */
export interface DocExample {
  /** `README.md#1`, `docs/gateway.md#2`: the file (relative to the repository) and the block's number. */
  readonly name: string
  /** A file name for it, unique among the examples: `docs-gateway-md-2.ts`. */
  readonly fileName: string
  readonly code: string
}

/**
 * The ```ts blocks of `markdown`, in order (```typescript, ```sh and the like are not taken).
 * @example
 * extractTsBlocks('```ts\nconst a = 1\n```\n') // ['const a = 1\n']
 */
export function extractTsBlocks(markdown: string): string[] {
  return fencedBlocks(markdown)
    .filter((block) => block.lang === 'ts')
    .map((block) => block.body.map((line) => `${line}\n`).join(''))
}

/** The Markdown files whose examples a tool author copies: README.md, lib/README.md and docs/*.md. */
export async function docFiles(repoRoot: string): Promise<string[]> {
  const docs = (await readdir(join(repoRoot, 'docs'))).filter((f) => f.endsWith('.md')).sort()
  return [
    join(repoRoot, 'README.md'),
    join(repoRoot, 'lib/README.md'),
    ...docs.map((f) => join(repoRoot, 'docs', f)),
  ]
}

/**
 * Every ```ts example of the {@link docFiles}, each made a module of its own (so top-level `await`
 * type-checks and names of two examples never clash).
 */
export async function docExamples(repoRoot: string): Promise<DocExample[]> {
  const examples: DocExample[] = []
  for (const file of await docFiles(repoRoot)) {
    const path = relative(repoRoot, file)
    extractTsBlocks(await readFile(file, 'utf8')).forEach((code, i) => {
      examples.push({
        name: `${path}#${i + 1}`,
        fileName: `${path.replace(/[^A-Za-z0-9]+/g, '-')}-${i + 1}.ts`,
        code: `${code}\nexport {}\n`,
      })
    })
  }
  return examples
}
