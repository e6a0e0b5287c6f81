import { readFile } from 'node:fs/promises'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { fdOf, getPeerCred } from '../../common/peercred/peercred.js'
import { processStartTime } from '../../common/peercred/process-facts.js'
import { tcpPeerUid } from '../../common/peercred/sock-diag.js'
import type { DelegateClient, Subject } from './delegate-client.js'
import type { Forwarder, ForwardTarget } from './forwarder.js'
import { isInTree } from './process-tree.js'

/** The largest request head read before the relay gives up on a connection. */
const MAX_HEAD_BYTES = 64 * 1024
const HEAD_END = Buffer.from('\r\n\r\n')
const JWT_DEADLINE_MS = 10_000

/** What the relay needs to attach the launched process's identity to each proxy request. */
export interface IdentityRelayOptions {
  readonly listen: { readonly host: string } | { readonly path: string }
  readonly target: ForwardTarget
  readonly delegate: DelegateClient
  readonly launchName: string
  /** The audience of the JWT-SVID sent to the broker. */
  readonly audience: string
  /** Tool audiences: a JWT-SVID for each goes to the broker in `Tessera-Caller-Token`. */
  readonly toolAudiences: readonly string[]
  /** The launched tree's root (the launcher's child). */
  readonly rootPid: () => number | undefined
  /** The service account: the only uid a TCP peer may have. */
  readonly uid: number
}

/**
 * The first process of the account in the tree: the root itself, or (isolated launches, whose root
 * is the root-owned namespace init) its child.
 */
async function launchedProcess(root: number, uid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${root}/status`, 'utf8')
  const euid = Number(/^Uid:\s+\d+\s+(\d+)/m.exec(status)?.[1])
  if (euid === uid) return root
  const children = (await readFile(`/proc/${root}/task/${root}/children`, 'utf8')).trim().split(/\s+/)
  return children[0] ? Number(children[0]) : undefined
}

/** Whether the connection comes from the launch: a Unix peer in the tree, a TCP peer of the account. */
async function isFromLaunch(socket: Socket, options: IdentityRelayOptions): Promise<boolean> {
  const root = options.rootPid()
  if (root === undefined) return false
  if ('path' in options.listen) return isInTree(getPeerCred(fdOf(socket)).pid, root)
  return tcpPeerUid(socket) === options.uid
}

/**
 * A request head with the caller's identity as the broker reads it: any `Proxy-Authorization` and
 * `Tessera-Caller-Token` the client sent are dropped and `Proxy-Authorization: Bearer <JWT-SVID>`
 * added; a request other than CONNECT also gets one `Tessera-Caller-Token` per tool token (the
 * broker presents the one for a gateway's audience to that gateway) and `Connection: close`, so
 * that every request comes on a connection of its own and carries the headers (a CONNECT tunnel has
 * only its one head, which the broker never passes on).
 */
export function withProxyAuthorization(
  head: string,
  token: string,
  toolTokens: readonly string[] = [],
): string {
  const [requestLine = '', ...lines] = head.split('\r\n')
  const isConnect = requestLine.startsWith('CONNECT ')
  const dropped = isConnect
    ? ['proxy-authorization', 'tessera-caller-token']
    : ['proxy-authorization', 'tessera-caller-token', 'connection', 'proxy-connection', 'keep-alive']
  const kept = lines.filter(
    (l) => l !== '' && !dropped.includes(l.slice(0, l.indexOf(':')).trim().toLowerCase()),
  )
  const added = [
    `Proxy-Authorization: Bearer ${token}`,
    ...(isConnect ? [] : toolTokens.map((t) => `Tessera-Caller-Token: ${t}`)),
    ...(isConnect ? [] : ['Connection: close']),
  ]
  return `${[requestLine, ...kept, ...added].join('\r\n')}\r\n\r\n`
}

function readHead(socket: Socket): Promise<{ head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0)
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      const end = buffered.indexOf(HEAD_END)
      if (end < 0 && buffered.length <= MAX_HEAD_BYTES) return
      socket.off('data', onData)
      socket.pause()
      if (end < 0) return reject(new Error('request head too large'))
      resolve({ head: buffered.subarray(0, end).toString('latin1'), rest: buffered.subarray(end + 4) })
    }
    socket.on('data', onData)
    socket.once('error', reject)
    socket.once('end', () => reject(new Error('closed before a request head')))
  })
}

async function relayOne(inbound: Socket, options: IdentityRelayOptions): Promise<void> {
  if (!(await isFromLaunch(inbound, options))) {
    inbound.destroy()
    return
  }
  const { head, rest } = await readHead(inbound)
  const pid = await launchedProcess(options.rootPid() as number, options.uid)
  if (pid === undefined) throw new Error('the launched process is gone')
  const subject: Subject = { pid, startTime: await processStartTime(pid), launchName: options.launchName }
  const isConnect = head.startsWith('CONNECT ')
  // One JWT-SVID per audience: a token is never stretched to two (the broker's and a tool's).
  const audiences = [options.audience, ...(isConnect ? [] : options.toolAudiences)]
  const tokens = await Promise.all(
    audiences.map(async (aud) => {
      const jwt = await options.delegate.fetchJwt(subject, [aud], '', JWT_DEADLINE_MS)
      const svid = jwt.svids[0]?.svid
      if (svid === undefined) throw new Error(`no JWT-SVID for the launched process (audience ${aud})`)
      return svid
    }),
  )
  const [token = '', ...toolTokens] = tokens
  const t = options.target
  const outbound = 'path' in t ? connect(t.path) : connect(t.port, t.host)
  outbound.on('error', () => inbound.destroy())
  inbound.on('error', () => outbound.destroy())
  outbound.write(withProxyAuthorization(head, token, toolTokens))
  if (rest.length > 0) outbound.write(rest)
  inbound.pipe(outbound)
  outbound.pipe(inbound)
  inbound.resume()
}

/**
 * The broker relay of a launch that names a broker audience: each request to the broker carries
 * the launched process's own JWT-SVID (obtained through the delegated API), so an agent CLI that
 * knows nothing of SPIFFE is identified by the broker, and nothing outside the launch is.
 */
export function startIdentityRelay(options: IdentityRelayOptions): Promise<Forwarder> {
  const sockets = new Set<Socket>()
  const server: Server = createServer((inbound) => {
    sockets.add(inbound)
    inbound.once('close', () => sockets.delete(inbound))
    relayOne(inbound, options).catch(() => {
      if (!inbound.destroyed) inbound.end('HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n')
    })
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    const ready = () => {
      const address = server.address()
      resolve({
        port: typeof address === 'object' && address ? address.port : 0,
        close: () =>
          new Promise((done) => {
            for (const s of sockets) s.destroy()
            server.close(() => done())
          }),
      })
    }
    if ('path' in options.listen) server.listen(options.listen.path, ready)
    else server.listen(0, options.listen.host, ready)
  })
}
