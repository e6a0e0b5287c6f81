import { execFile } from 'node:child_process'
import { existsSync, readlinkSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { firstLine, spawnPiped, stopChild } from './child-process.js'

const run = promisify(execFile)
const ATTACKER_SOURCE = fileURLToPath(new URL('./binding-attacker.c', import.meta.url))
const PRELOAD_SOURCE = fileURLToPath(new URL('./binding-preload.c', import.meta.url))

/** The attacker binary and the preload object, compiled into `dir`. */
export interface AttackTools {
  readonly attacker: string
  readonly preload: string
  /** A raw HTTP/2 FetchJWTSVID request (audience `attack`), as a file the attackers send. */
  readonly request: string
}

/** Whether a C compiler is here (the native addon needs one too). */
export async function hasCompiler(): Promise<boolean> {
  return run('cc', ['--version']).then(
    () => true,
    () => false,
  )
}

/** Compiles the attacker and the preload object into `dir` and writes the request file. */
export async function buildAttackTools(dir: string): Promise<AttackTools> {
  const tools = {
    attacker: join(dir, 'attacker'),
    preload: join(dir, 'preload.so'),
    request: join(dir, 'request.bin'),
  }
  await run('cc', ['-O1', '-o', tools.attacker, ATTACKER_SOURCE])
  await run('cc', ['-O1', '-shared', '-fPIC', '-o', tools.preload, PRELOAD_SOURCE])
  await writeFile(tools.request, fetchJwtRequest('attack'))
  return tools
}

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9)
  head.writeUIntBE(payload.length, 0, 3)
  head[3] = type
  head[4] = flags
  head.writeUInt32BE(streamId, 5)
  return Buffer.concat([head, payload])
}

/** HPACK "literal header field without indexing, new name", no Huffman (short strings only). */
function literal(name: string, value: string): Buffer {
  return Buffer.concat([
    Buffer.from([0x00, name.length]),
    Buffer.from(name),
    Buffer.from([value.length]),
    Buffer.from(value),
  ])
}

/** The client preface, SETTINGS, and one FetchJWTSVID call (HEADERS + DATA, END_STREAM) as raw bytes. */
export function fetchJwtRequest(audience: string): Buffer {
  const headers = Buffer.concat([
    literal(':method', 'POST'),
    literal(':scheme', 'http'),
    literal(':path', '/SpiffeWorkloadAPI/FetchJWTSVID'),
    literal(':authority', 'localhost'),
    literal('content-type', 'application/grpc'),
    literal('te', 'trailers'),
    literal('workload.spiffe.io', 'true'),
  ])
  const body = Buffer.concat([Buffer.from([0x0a, audience.length]), Buffer.from(audience)]) // audience = [..]
  const message = Buffer.alloc(5 + body.length)
  message.writeUInt32BE(body.length, 1)
  body.copy(message, 5)
  return Buffer.concat([
    Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
    frame(0x4, 0, 0, Buffer.alloc(0)),
    frame(0x1, 0x4, 1, headers),
    frame(0x0, 0x1, 1, message),
  ])
}

/** Polls `check` every 10 ms until it holds or `timeoutMs` passes; false on timeout. */
export async function waitUntil(check: () => boolean, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (check()) return true
    await new Promise((r) => setTimeout(r, 10))
  }
  return false
}

/** The target of `/proc/<pid>/exe`, or '' when unreadable. */
export function exeOf(pid: number): string {
  try {
    return readlinkSync(`/proc/${pid}/exe`)
  } catch {
    return ''
  }
}

/** What an attacker wrote to its output file (latin1), waiting for it up to 20 s. */
export async function readAnswer(file: string): Promise<string> {
  if (!(await waitUntil(() => existsSync(file), 20_000))) throw new Error(`no answer written to ${file}`)
  return (await readFile(file)).toString('latin1')
}

/** Spawns a process and resolves with it once it printed its first line (that line too). */
export async function spawnWithLine(
  cmd: string,
  args: ReadonlyArray<string>,
  env: Record<string, string> = {},
): Promise<{ pid: number; line: string; kill(): void }> {
  const piped = spawnPiped(cmd, args, { env, cwd: process.cwd() })
  const { child } = piped
  const line = await firstLine(piped).catch(async (err: Error) => {
    await stopChild(child, 'SIGKILL')
    throw new Error(`${cmd} printed nothing: ${err.message}`)
  })
  return { pid: child.pid ?? -1, line, kill: () => child.kill('SIGKILL') }
}
