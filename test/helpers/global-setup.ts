import { chmodSync, realpathSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const changed: Array<{ dir: string; mode: number }> = []

/**
 * Integration tests run workloads and CLIs as other users (uid 65534) from this checkout, with the
 * Node binary running the tests (`process.execPath`). A checkout inside a private directory (e.g.
 * `mktemp -d`, 0700) is unreachable for them, and so is a Node taken from a cache under /root (CI's
 * Node 24, see .ci/run). So, when root, let others traverse (never list) the ancestors of both for
 * the run, and restore the modes afterwards.
 */
export function setup(): void {
  if (process.getuid?.() !== 0) return
  for (const path of [REPO, realpathSync(process.execPath)]) openAncestors(path)
}

/** Restores the modes `setup` changed. */
export function teardown(): void {
  for (const { dir, mode } of changed.splice(0).reverse()) chmodSync(dir, mode)
}

function openAncestors(path: string): void {
  for (let dir = dirname(path); dir !== dirname(dir); dir = dirname(dir)) {
    const mode = statSync(dir).mode & 0o7777
    if ((mode & 0o001) === 0) {
      chmodSync(dir, mode | 0o001)
      changed.push({ dir, mode })
    }
  }
}
