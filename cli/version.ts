import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The `name` of the repository's package.json, which carries the CLI's version. */
const PACKAGE_NAME = 'tessera'

/**
 * The version in Tessera's package.json, found by walking up from this file (it is `cli/` in the
 * sources and `dist/cli/` once built); `unknown` when no such package.json is found.
 */
export function readCliVersion(from: string = fileURLToPath(import.meta.url)): string {
  let dir = dirname(from)
  for (;;) {
    const version = versionIn(join(dir, 'package.json'))
    if (version !== undefined) return version
    const parent = dirname(dir)
    if (parent === dir) return 'unknown'
    dir = parent
  }
}

function versionIn(path: string): string | undefined {
  try {
    const pkg = JSON.parse(readFileSync(path, 'utf8')) as { name?: unknown; version?: unknown }
    return pkg.name === PACKAGE_NAME && typeof pkg.version === 'string' ? pkg.version : undefined
  } catch {
    return undefined
  }
}
