import { copyFile, link, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Stack } from './stack.js'

/**
 * An "unknown binary": one copy of node in the stack dir, reached by hard links under other names
 * (each link is its own exe path; the hash, of the same image, is computed once).
 */
export async function unknownBinary(stack: Stack, name: string): Promise<string> {
  const bin = join(stack.dir, 'bin')
  const original = join(bin, '.node-copy')
  await mkdir(bin, { recursive: true })
  await copyFile(process.execPath, original).catch(() => undefined)
  const path = join(bin, name)
  await link(original, path)
  return path
}
