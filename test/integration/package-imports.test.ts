import { readdir, readFile } from 'node:fs/promises'
import { isBuiltin } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const LIB = fileURLToPath(new URL('../../lib/', import.meta.url))
const SPECIFIER =
  /(?:^|\s)(?:import|export)\s(?:[^'"]*?\sfrom\s)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g

/** The library's own sources: every .ts under lib/ but tests, test fixtures, node_modules and dist. */
async function librarySources(): Promise<string[]> {
  const entries = await readdir(LIB, { recursive: true, withFileTypes: true })
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
    .map((e) => join(e.parentPath, e.name))
    .filter((p) => !/\/(node_modules|dist)\//.test(p.slice(LIB.length - 1)))
    .filter((p) => !/\.test\.ts$|\/test-(fixtures|tokens)\.ts$/.test(p))
}

/** `@scope/name` or `name` of a bare specifier. */
function packageOf(specifier: string): string {
  const parts = specifier.split('/')
  return (specifier.startsWith('@') ? parts.slice(0, 2) : parts.slice(0, 1)).join('/')
}

describe('the package declares what it imports', () => {
  it('every bare import in lib/ is a node: builtin or a dependency of lib/package.json, and every dependency is used', async () => {
    const manifest = JSON.parse(await readFile(join(LIB, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>
    }
    const deps = new Set(Object.keys(manifest.dependencies ?? {}))
    const undeclared: string[] = []
    const used = new Set<string>()
    const files = await librarySources()
    expect(files.length).toBeGreaterThan(50)
    for (const file of files) {
      // Comments hold examples that import the package by name: only code counts.
      const text = (await readFile(file, 'utf8'))
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/^\s*\/\/.*$/gm, '')
      for (const m of text.matchAll(SPECIFIER)) {
        const specifier = m[1] ?? m[2] ?? ''
        if (specifier.startsWith('.') || specifier.startsWith('/')) continue
        if (specifier.startsWith('node:') && isBuiltin(specifier)) continue
        const name = packageOf(specifier)
        if (deps.has(name)) used.add(name)
        else undeclared.push(`${file.slice(LIB.length)}: ${specifier}`)
      }
    }
    expect(undeclared).toEqual([])
    expect([...deps].filter((d) => !used.has(d))).toEqual([])
  })
})
