// `npm start`: builds only when the sources changed since the last build (build-stamp.mjs), then
// runs `tessera up` in this same process (so Ctrl-C, a closed terminal or a `kill` reach `up`
// itself). Arguments after `npm start --` go to `up`. Plain JavaScript: it runs before any build.
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { hashSources, ROOT, readStamp } from './build-stamp.mjs'

const startedMs = performance.now()
const seconds = () => ((performance.now() - startedMs) / 1000).toFixed(1)
const hash = hashSources()
const stamp = readStamp()
if (hash !== undefined && hash === stamp) {
  const files = hash.split(' ')[1]
  const checkedMs = (performance.now() - startedMs).toFixed(0)
  process.stdout.write(
    `dist/ is up to date with the sources (${files} files, checked in ${checkedMs} ms): no build.\n`,
  )
} else {
  const why = stamp === undefined ? 'No finished build in dist/' : 'The sources changed since the last build'
  process.stdout.write(`${why}: npm run build…\n`)
  // Under `npm start`, npm_execpath is npm's own script: the same npm builds.
  const npm = process.env.npm_execpath
  const result =
    npm === undefined
      ? spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' })
      : spawnSync(process.execPath, [npm, 'run', 'build'], { cwd: ROOT, stdio: 'inherit' })
  if (result.status !== 0) {
    process.stderr.write(
      `error: npm run build failed (${result.error?.message ?? `exit code ${result.status}`}); tessera up not started\n`,
    )
    process.exit(1)
  }
  process.stdout.write(`Built in ${seconds()} s.\n`)
}
const main = join(ROOT, 'dist', 'cli', 'main.js')
process.argv = [process.execPath, main, 'up', ...process.argv.slice(2)]
await import(pathToFileURL(main).href)
