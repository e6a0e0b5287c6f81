// The build stamp: a hash of what `npm run build` compiles, written into dist/ by the build, so
// that `npm start` (start.mjs) builds only when the sources changed. Plain JavaScript: it runs
// before anything is compiled.
//
//   node cli/up/build-stamp.mjs begin    first step of `npm run build`: hash the sources now
//   node cli/up/build-stamp.mjs commit   last step: that build finished, its hash is the stamp
//
// The hash is taken before the build starts, so a file saved during a build makes the next start
// build again; the stamp is removed first, so a failed or interrupted build never leaves one.
import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository root (this file is cli/up/build-stamp.mjs). */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const STAMP = join(ROOT, 'dist', 'build-stamp')
const PENDING = join(ROOT, 'dist', 'build-stamp.pending')

/** Files the build reads: sources, protos, and the package and compiler settings. */
const BUILD_INPUT = /(\.ts|\.proto|^package\.json|^package-lock\.json|^tsconfig.*\.json)$/

/** What .gitignore names plainly (no globs): generated and installed trees, never inputs. */
function readIgnored() {
  const anchored = new Set(['.git'])
  const anywhere = new Set(['node_modules'])
  let text = ''
  try {
    text = readFileSync(join(ROOT, '.gitignore'), 'utf8')
  } catch {
    // no .gitignore: only the defaults above
  }
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith('!') || /[*?[]/.test(line)) continue
    const path = line.replace(/^\/|\/$/g, '')
    if (path.includes('/')) anchored.add(path)
    else anywhere.add(path)
  }
  return (rel, name) => anchored.has(rel) || anywhere.has(name)
}

/** Every build input under `dir`, as paths relative to the root. */
function listInputs(dir, isIgnored, found) {
  let entries
  try {
    entries = readdirSync(dir, { withFileTypes: true })
  } catch {
    return
  }
  for (const entry of entries) {
    const path = join(dir, entry.name)
    const rel = relative(ROOT, path)
    if (isIgnored(rel, entry.name)) continue
    if (entry.isDirectory()) listInputs(path, isIgnored, found)
    else if (entry.isFile() && BUILD_INPUT.test(entry.name) && !entry.name.endsWith('.test.ts'))
      found.push(rel)
  }
}

/**
 * The hash of the build's inputs: the directories tsconfig.json compiles, proto/, and the root's
 * package and compiler settings. Undefined when tsconfig.json cannot be read (then: build).
 */
export function hashSources() {
  let include
  try {
    include = JSON.parse(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8')).include
  } catch {
    return undefined
  }
  if (!Array.isArray(include)) return undefined
  const isIgnored = readIgnored()
  const files = readdirSync(ROOT).filter((name) => BUILD_INPUT.test(name))
  for (const dir of [...include.map(String), 'proto']) listInputs(join(ROOT, dir), isIgnored, files)
  const hash = createHash('sha256')
  for (const file of [...new Set(files)].sort()) {
    hash.update(`${file}\0`)
    hash.update(readFileSync(join(ROOT, file)))
    hash.update('\0')
  }
  return `${hash.digest('hex')} ${files.length}`
}

/** The stamp of the last finished build, or undefined. */
export function readStamp() {
  try {
    return readFileSync(STAMP, 'utf8').trim()
  } catch {
    return undefined
  }
}

const step = process.argv[1] === fileURLToPath(import.meta.url) ? process.argv[2] : undefined
if (step === 'begin') {
  rmSync(STAMP, { force: true })
  const hash = hashSources()
  mkdirSync(join(ROOT, 'dist'), { recursive: true })
  if (hash === undefined) rmSync(PENDING, { force: true })
  else writeFileSync(PENDING, `${hash}\n`)
} else if (step === 'commit') {
  try {
    renameSync(PENDING, STAMP)
  } catch {
    // no hash was taken at the start: no stamp, the next start builds
  }
} else if (step !== undefined) {
  process.stderr.write(`usage: node cli/up/build-stamp.mjs begin|commit (not ${step})\n`)
  process.exit(2)
}
