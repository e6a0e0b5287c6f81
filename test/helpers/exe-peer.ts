import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmod } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { fdOf } from '../../common/peercred/peercred.js'
import { type ProcessFacts, readProcessFacts } from '../../common/peercred/process-facts.js'

/** A paused Unix-socket server that hands out its accepted connections in order. */
export interface PeerServer {
  readonly path: string
  next(): Promise<Socket>
  close(): void
}

/** Listens on `<dir>/peer.sock` (mode 0777, so peers running as other users can connect). */
export async function startPeerServer(dir: string): Promise<PeerServer> {
  const path = join(dir, 'peer.sock')
  const accepted: Socket[] = []
  const waiting: ((s: Socket) => void)[] = []
  const server: Server = createServer({ pauseOnConnect: true }, (socket) => {
    const waiter = waiting.shift()
    if (waiter) waiter(socket)
    else accepted.push(socket)
  })
  server.listen(path)
  await once(server, 'listening')
  await chmod(path, 0o777)
  return {
    path,
    next: () => {
      const ready = accepted.shift()
      return ready ? Promise.resolve(ready) : new Promise((resolve) => waiting.push(resolve))
    },
    close: () => server.close(),
  }
}

/** A connected peer process, its accepted socket and its attested facts. */
export interface ExePeer {
  readonly child: ChildProcess
  readonly socket: Socket
  readonly facts: ProcessFacts
  /** Tells the peer to go on (exit, or exec for the python peer), without waiting. */
  poke(): void
  /** Ends the peer, waits until it is reaped, and closes the socket and facts. */
  exit(): Promise<void>
}

/** Run by a copy of the node binary: connect, report, exit on any stdin input. */
const NODE_HOLDER = `
const s = require('node:net').connect(process.argv.at(-1), () => process.stdout.write('connected\\n'));
s.on('error', () => process.exit(2));
process.stdin.on('data', () => process.exit(0));
`

/** Run by python3: connect, report, then on input exec /bin/sleep keeping the connection. */
const PYTHON_EXECER = `
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
os.set_inheritable(s.fileno(), True)
print('connected', flush=True)
sys.stdin.readline()
os.execv('/bin/sleep', ['sleep', '60'])
`

/** Who the peer runs as; default this process's user. */
export interface RunAs {
  readonly uid?: number
  readonly gid?: number
}

/** Starts `exe` (a copy of node) as a peer of `server`, waits for its connection, reads its facts. */
export function spawnNodePeer(server: PeerServer, exe: string, runAs: RunAs = {}): Promise<ExePeer> {
  return connectPeer(server, spawn(exe, ['-e', NODE_HOLDER, '--', server.path], spawnOptions(runAs)))
}

/** Starts a python3 peer that execs `/bin/sleep` when poked, keeping its connection. */
export function spawnPythonExecer(server: PeerServer, python: string): Promise<ExePeer> {
  return connectPeer(server, spawn(python, ['-c', PYTHON_EXECER, server.path], spawnOptions({})))
}

function spawnOptions(runAs: RunAs) {
  return { stdio: ['pipe', 'pipe', 'pipe'] as ['pipe', 'pipe', 'pipe'], cwd: '/', ...runAs }
}

async function connectPeer(server: PeerServer, child: ChildProcess): Promise<ExePeer> {
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  const exited = once(child, 'exit')
  const [first] = (await Promise.race([once(child.stdout!, 'data'), exited])) as [unknown]
  if (!Buffer.isBuffer(first)) throw new Error(`peer failed to connect: ${stderr}`)
  const socket = await server.next()
  const facts = await readProcessFacts(fdOf(socket))
  return {
    child,
    socket,
    facts,
    poke: () => child.stdin?.write('go\n'),
    exit: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited.catch(() => undefined)
      facts.close()
      socket.destroy()
    },
  }
}
