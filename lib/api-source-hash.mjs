// The hash of what docs/api/ is generated from: every non-test .ts file under lib/ and lib/typedoc.json.
// `node lib/api-source-hash.mjs` prints it; `--write` stores it in docs/api/.source-hash (run by
// `npm run docs:api`); test/integration/package-api-docs.test.ts compares the two.
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

const REPO = fileURLToPath(new URL('..', import.meta.url))
const LIB = join(REPO, 'lib')

/** The files docs/api is generated from, relative to the repository, sorted. */
export function apiSources() {
  const files = readdirSync(LIB, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(REPO, join(e.parentPath, e.name)).split(sep).join('/'))
    .filter((p) => !/^lib\/(node_modules|dist)\//.test(p))
    .filter((p) => (p.endsWith('.ts') && !p.endsWith('.d.ts')) || p === 'lib/typedoc.json')
    .filter((p) => !/\.test\.ts$|\/test-(fixtures|tokens)\.ts$/.test(p))
  return files.sort()
}

/** sha256 over each source's path and content. */
export function apiSourceHash() {
  const hash = createHash('sha256')
  for (const path of apiSources())
    hash
      .update(`${path}\0`)
      .update(readFileSync(join(REPO, path)))
      .update('\0')
  return hash.digest('hex')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const digest = apiSourceHash()
  if (process.argv.includes('--write')) writeFileSync(join(REPO, 'docs/api/.source-hash'), `${digest}\n`)
  else process.stdout.write(`${digest}\n`)
}
