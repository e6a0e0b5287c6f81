import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { collectOutput, untilEnd } from './child-process.js'

/** A process that connects to a Unix socket as some user and keeps the connection open. */
export interface PeerChild {
  readonly child: ChildProcess
  readonly pid: number
  /** Makes the child exit and waits until node has reaped it. */
  exit(): Promise<void>
}

/** Who the child runs as. With `groups`, it starts as root and drops to uid/gid itself. */
export interface RunAs {
  readonly uid?: number
  readonly gid?: number
  readonly groups?: readonly number[]
}

const requireHere = createRequire(import.meta.url)
/** Absolute paths so that a child running as another user needs no cwd access. */
export const GRPC_PATH = requireHere.resolve('@grpc/grpc-js')
export const LOADER_PATH = requireHere.resolve('@grpc/proto-loader')
export const ECHO_PROTO = fileURLToPath(new URL('./echo.proto', import.meta.url))

const DROP_PRIVILEGES = `
const [groups, gid, uid] = JSON.parse(process.argv.at(-1));
if (groups) { process.setgroups(groups); process.setgid(gid); process.setuid(uid); }
`

const HOLDER = `${DROP_PRIVILEGES}
const s = require('node:net').connect(process.argv.at(-2), () => process.stdout.write('connected\\n'));
s.on('error', () => process.exit(2));
s.on('close', () => process.exit(0));
process.stdin.on('data', () => process.exit(0));
`

const ECHO_CLIENT = `${DROP_PRIVILEGES}
const grpc = require(${JSON.stringify(GRPC_PATH)});
const loader = require(${JSON.stringify(LOADER_PATH)});
const def = loader.loadSync(${JSON.stringify(ECHO_PROTO)}, { keepCase: true });
const { Echo } = grpc.loadPackageDefinition(def).tessera.test;
const client = new Echo('unix:' + process.argv.at(-2), grpc.credentials.createInsecure());
client.Echo({ text: 'from ' + process.pid }, (err, res) => {
  process.stdout.write(JSON.stringify(err ? { code: err.code } : res));
  client.close();
});
`

function spawnNode(script: string, path: string, runAs: RunAs): ChildProcess {
  const dropInChild = runAs.groups !== undefined
  const args = ['-e', script, '--', path, JSON.stringify([runAs.groups ?? null, runAs.gid, runAs.uid])]
  return spawn(process.execPath, args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    cwd: '/',
    ...(dropInChild ? {} : { uid: runAs.uid, gid: runAs.gid }),
  })
}

/** Spawns a child that connects to `path` and stays connected until {@link PeerChild.exit}. */
export async function spawnHolder(path: string, runAs: RunAs = {}): Promise<PeerChild> {
  const child = spawnNode(HOLDER, path, runAs)
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  const exited = once(child, 'exit')
  const [first] = (await Promise.race([once(child.stdout!, 'data'), exited])) as [unknown]
  if (!Buffer.isBuffer(first)) throw new Error(`holder child failed to connect: ${stderr}`)
  return {
    child,
    pid: child.pid!,
    exit: async () => {
      if (child.exitCode === null && child.signalCode === null) child.stdin?.write('x')
      await exited
    },
  }
}

/** Runs one Echo call from a child process and returns its JSON answer (or `{ code }`). */
export async function runEchoClient(
  path: string,
  runAs: RunAs = {},
): Promise<{ pid: number; result: Record<string, unknown> }> {
  const child = spawnNode(ECHO_CLIENT, path, runAs)
  const { stdout: out, stderr: err } = await untilEnd({ child, output: collectOutput(child) })
  if (out === '') throw new Error(`echo client produced nothing: ${err}`)
  return { pid: child.pid!, result: JSON.parse(out) as Record<string, unknown> }
}
