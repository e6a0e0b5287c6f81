import type { Selector } from './selector.js'

/**
 * Basenames of programs that run other code given to them (a script, `-e`, stdin): a process of such a
 * program is whatever script it was handed. Versioned names (`python3.12`, `perl5.36`, `php8.2`,
 * `ruby3.1`, `lua5.4`) are matched too.
 */
const INTERPRETER_NAME =
  /^(?:node(?:js)?|deno|bun|python[0-9.]*|pypy[0-9.]*|perl[0-9.]*|ruby[0-9.]*|php[0-9.]*(?:-cgi)?|java|jshell|lua(?:jit)?[0-9.]*|tclsh[0-9.]*|wish[0-9.]*|R|Rscript|julia|pwsh|osascript|erl|escript|elixir|guile[0-9.]*|[gm]?awk|busybox|(?:ba|da|z|k|mk|c|tc|fi|a|yash|rbash)?sh)$/

/** What the caller knows of this host's interpreters: sha256 (hex, lower case) → a path with that content. */
export type InterpreterHashes = ReadonlyMap<string, string>

/** True when `basename` names an interpreter (see the list above). Pure. */
export function isInterpreterName(basename: string): boolean {
  return INTERPRETER_NAME.test(basename)
}

function basenameOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1)
}

/**
 * Warnings about an entry's binary pins (`unix:sha256`, `unix:path`): since all of an entry's
 * selectors describe the same executable, one pin naming an interpreter (by the path's basename, or a
 * hash equal to that of an interpreter on this host) makes the whole entry an interpreter's, and then
 * any script that interpreter runs, under the matching uid, gets the identity. Empty when no pin names
 * an interpreter, or when the entry pins no binary at all. Pure.
 * @example
 * interpreterWarnings([Selector.parse('unix:path:/usr/bin/python3')], new Map()) // one warning
 */
export function interpreterWarnings(selectors: ReadonlyArray<Selector>, hashes: InterpreterHashes): string[] {
  const found: string[] = []
  for (const s of selectors) {
    if (s.type !== 'unix') continue
    if (s.value.startsWith('path:') && isInterpreterName(basenameOf(s.value.slice(5))))
      found.push(`unix:${s.value} is an interpreter`)
    if (s.value.startsWith('sha256:')) {
      const path = hashes.get(s.value.slice(7).toLowerCase())
      if (path !== undefined) found.push(`unix:sha256 is the hash of the interpreter ${path}`)
    }
  }
  if (found.length === 0) return []
  return [
    `${found.join('; ')}: any script it runs gets this identity, so this entry does not tell one ` +
      'program of the matching user from another. Pin a compiled binary, or run the program under ' +
      'a user of its own (see docs/boundary.md).',
  ]
}
