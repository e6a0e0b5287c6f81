import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import http2 from 'node:http2'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { ConnectionOptions, TLSSocket } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BundleSet } from '../../lib/core/bundle/bundle-source.js'
import { isIdentityError } from '../../lib/core/errors.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import { TrustDomain } from '../../lib/core/trust-domain.js'
import type { X509Svid } from '../../lib/core/x509/x509-svid.js'
import * as tlsEntry from '../../lib/tls/index.js'
import { createMtlsServer, mtlsClientOptions, peerSpiffeId, type TlsX509Source } from '../../lib/tls/index.js'
import { type Authorizer, authorizeAny, authorizeId, authorizeMemberOf } from '../../lib/verify/authorizer.js'
import { verifyX509Peer } from '../../lib/verify/x509-peer.js'
import { LinearBackoff } from '../../lib/workload/backoff.js'
import { X509Source } from '../../lib/workload/x509-source.js'
import { waitFor } from '../helpers/processes.js'
import { type Stack, startStack } from '../helpers/stack.js'
import { TestCa } from '../helpers/test-ca.js'

const TD = 'tessera.local'
const SERVER = `spiffe://${TD}/tls/server`
const CLIENT = `spiffe://${TD}/tls/client`
const PARTNER = 'partner.example'
const partnerTd = TrustDomain.parse(PARTNER)
const uid = process.getuid?.() ?? 0
const only = (id: string) => authorizeId(SpiffeId.parse(id))

let stack: Stack
let serverSource: X509Source
let clientSource: X509Source
let partner: TestCa
const closers: Array<() => unknown> = []

function hasSvid(source: X509Source): boolean {
  try {
    return source.getX509Svid() !== undefined
  } catch {
    return false
  }
}

beforeAll(async () => {
  stack = await startStack({ trustDomain: TD })
  partner = await TestCa.create(PARTNER)
  const path = join(stack.dir, 'partner.pem')
  await writeFile(path, partner.bundlePem)
  const set = await stack.cli(['bundle', 'set', '--id', `spiffe://${PARTNER}`, '--path', path])
  expect(set.code, set.stderr).toBe(0)
  const selectors = [`unix:uid:${uid}`]
  const federatesWith = [`spiffe://${PARTNER}`]
  await stack.registerEntry({ spiffeId: SERVER, selectors, hint: 'server', x509Ttl: '6s', federatesWith })
  await stack.registerEntry({ spiffeId: CLIENT, selectors, hint: 'client' })
  const source = (hint: string) =>
    X509Source.create({
      endpoint: `unix://${stack.socketPath}`,
      picker: (svids) => svids.find((s) => s.hint === hint),
      newBackoff: () => new LinearBackoff({ initialDelayMs: 100, maxDelayMs: 500 }),
      timeoutMs: 20_000,
    })
  ;[serverSource, clientSource] = await Promise.all([source('server'), source('client')])
  await waitFor(
    () =>
      hasSvid(serverSource) && hasSvid(clientSource) && !!serverSource.getX509BundleForTrustDomain(partnerTd),
    { timeoutMs: 20_000 },
  )
})

afterAll(async () => {
  serverSource?.close()
  clientSource?.close()
  try {
    // A server that does not close within a second must not keep the stack alive.
    const late = () => new Promise((resolve) => setTimeout(resolve, 1000).unref())
    await Promise.all(closers.map((close) => Promise.race([close(), late()])))
  } finally {
    await stack?.stop()
  }
})

interface Served {
  readonly port: number
  readonly refused: string[]
  readonly handled: string[]
}

/** An https server built from the server source; it answers with what it knows of the caller. */
async function serveHttps(authorizer: Authorizer): Promise<Served> {
  const refused: string[] = []
  const handled: string[] = []
  const server = createMtlsServer(
    serverSource,
    authorizer,
    (options) =>
      https.createServer(options, (req, res) => {
        const socket = req.socket as TLSSocket
        const peer = peerSpiffeId(socket)?.toString() ?? 'none'
        handled.push(peer)
        res.end(JSON.stringify({ peer, protocol: socket.getProtocol() }))
      }),
    { onRefused: (e) => refused.push(e.code) },
  )
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  closers.push(() => {
    server.closeAllConnections()
    return new Promise((resolve) => server.close(resolve))
  })
  return { port: (server.address() as AddressInfo).port, refused, handled }
}

interface Answer {
  readonly body: { peer: string; protocol: string }
  readonly serverId: string | undefined
  readonly serverSerial: string
}

/** One request on a fresh connection (no agent pooling, no session reuse). */
function get(port: number, options: ConnectionOptions, extra: https.RequestOptions = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { ...options, host: '127.0.0.1', port, path: '/', agent: false, ...extra },
      (res) => {
        const socket = res.socket as TLSSocket
        const serverId = peerSpiffeId(socket)?.toString()
        const serverSerial = socket.getPeerCertificate().serialNumber
        let body = ''
        res.on('data', (d: Buffer) => {
          body += d.toString()
        })
        res.on('end', () => resolve({ body: JSON.parse(body), serverId, serverSerial }))
      },
    )
    req.on('error', reject)
    req.end()
  })
}

const codeOf = (err: unknown) => (isIdentityError(err) ? err.code : (err as NodeJS.ErrnoException).code)

describe('mutual TLS from two X509Sources of a real agent', () => {
  it("https: a TLS 1.3 mutual handshake, each side reading the other's SPIFFE ID", async () => {
    const served = await serveHttps(only(CLIENT))
    const answer = await get(served.port, mtlsClientOptions(clientSource, only(SERVER)))
    expect(answer.body).toEqual({ peer: CLIENT, protocol: 'TLSv1.3' })
    expect(answer.serverId).toBe(SERVER)
  })

  it('http2: the same helpers work for createSecureServer and connect', async () => {
    const server = createMtlsServer(serverSource, only(CLIENT), (options) =>
      http2.createSecureServer(options),
    )
    server.on('stream', (stream) => {
      stream.respond({ ':status': 200 })
      stream.end(peerSpiffeId(stream.session?.socket as TLSSocket)?.toString())
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    closers.push(() => new Promise((resolve) => server.close(resolve)))
    const port = (server.address() as AddressInfo).port
    const session = http2.connect(`https://127.0.0.1:${port}`, mtlsClientOptions(clientSource, only(SERVER)))
    const req = session.request({ ':path': '/' })
    let body = ''
    req.on('data', (d: Buffer) => {
      body += d.toString()
    })
    await once(req, 'end')
    expect(body).toBe(CLIENT)
    expect(peerSpiffeId(session.socket as TLSSocket)?.toString()).toBe(SERVER)
    session.close()
  })

  it('a client whose authorizer refuses the server fails the handshake; nothing reaches the server', async () => {
    const served = await serveHttps(authorizeAny())
    const err = await get(
      served.port,
      mtlsClientOptions(clientSource, only(`spiffe://${TD}/someone-else`)),
    ).catch((e: unknown) => e)
    expect(codeOf(err)).toBe('ERR_PEER_UNAUTHORIZED')
    expect(served.handled).toEqual([])
  })

  it('a server whose authorizer refuses the client closes the connection before any request is handled', async () => {
    const served = await serveHttps(only(`spiffe://${TD}/someone-else`))
    const err = await get(served.port, mtlsClientOptions(clientSource, only(SERVER))).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(Error)
    expect(served.refused).toEqual(['ERR_PEER_UNAUTHORIZED'])
    expect(served.handled).toEqual([])
  })

  it('a client without a certificate is refused in the handshake', async () => {
    const served = await serveHttps(authorizeAny())
    const { key: _key, cert: _cert, ...noCert } = { ...mtlsClientOptions(clientSource, only(SERVER)) }
    await expect(get(served.port, noCert)).rejects.toThrow()
    expect(served.handled).toEqual([])
  })
})

describe('rotation picked up', () => {
  it('new connections present the rotated certificate (6 s TTL) without restarting the server', async () => {
    const served = await serveHttps(only(CLIENT))
    const client = mtlsClientOptions(clientSource, only(SERVER))
    const first = await get(served.port, client)
    await waitFor(async () => (await get(served.port, client)).serverSerial !== first.serverSerial, {
      timeoutMs: 15_000,
    })
    // Without SNI (the server's default context, replaced on update) and with SNI (SNICallback).
    const noSni = await get(served.port, client)
    const withSni = await get(served.port, client, { servername: 'tool.tessera.test' })
    for (const answer of [noSni, withSni]) {
      expect(answer.serverSerial).not.toBe(first.serverSerial)
      expect(answer.serverId).toBe(SERVER)
      expect(answer.body.peer).toBe(CLIENT)
    }
  })
})

/** A fixed source: a TestCa-issued SVID and the given bundles. */
function staticSource(svid: X509Svid, bundles: BundleSet): TlsX509Source {
  return {
    getX509Svid: () => svid,
    getX509BundleForTrustDomain: (td) => bundles.getX509BundleForTrustDomain(td),
    bundles,
    onUpdate: () => () => undefined,
  }
}

describe('createMtlsServer cannot be half-used', () => {
  it('the tls entry point exports no way to get server options without the check', () => {
    expect(Object.keys(tlsEntry).sort()).toEqual(['createMtlsServer', 'mtlsClientOptions', 'peerSpiffeId'])
  })

  it('refuses a createServer that drops requestCert, or that builds something other than a TLS server', () => {
    const dropped = () =>
      createMtlsServer(serverSource, authorizeAny(), (options) =>
        https.createServer({ ...options, requestCert: false }),
      )
    expect(dropped).toThrow(expect.objectContaining({ code: 'ERR_REQUEST_INVALID' }))
    const plain = () => createMtlsServer(serverSource, authorizeAny(), () => http2.createServer() as never)
    expect(plain).toThrow(expect.objectContaining({ code: 'ERR_REQUEST_INVALID' }))
  })

  it('refuses a peer of a trust domain it has no bundle for: nothing reaches the handler', async () => {
    const served = await serveHttps(authorizeAny())
    const stranger = await TestCa.create('stranger.example')
    const issued = await stranger.issue('spiffe://stranger.example/tool')
    const own = serverSource.getX509BundleForTrustDomain(TrustDomain.parse(TD))
    const strangerSource = staticSource(issued.svid, BundleSet.of({ x509: own ? [own] : [] }))
    await expect(get(served.port, mtlsClientOptions(strangerSource, only(SERVER)))).rejects.toThrow()
    expect(served.handled).toEqual([])
  })

  it('refuses a federated peer its authorizer does not admit, with ERR_PEER_UNAUTHORIZED', async () => {
    const served = await serveHttps(authorizeMemberOf(TrustDomain.parse(TD)))
    const issued = await partner.issue(`spiffe://${PARTNER}/outsider`)
    const own = serverSource.getX509BundleForTrustDomain(TrustDomain.parse(TD))
    const partnerSource = staticSource(issued.svid, BundleSet.of({ x509: own ? [own] : [] }))
    await expect(get(served.port, mtlsClientOptions(partnerSource, only(SERVER)))).rejects.toThrow()
    expect(served.refused).toEqual(['ERR_PEER_UNAUTHORIZED'])
    expect(served.handled).toEqual([])
    // The same server admits its own trust domain's client.
    expect((await get(served.port, mtlsClientOptions(clientSource, only(SERVER)))).body.peer).toBe(CLIENT)
  })
})

describe('a removed CA is no longer trusted', () => {
  it('a federated client is accepted, then refused once its bundle is deleted and the source updated', async () => {
    const served = await serveHttps(authorizeAny())
    const issued = await partner.issue(`spiffe://${PARTNER}/x`)
    const own = serverSource.getX509BundleForTrustDomain(TrustDomain.parse(TD))
    const partnerSource = staticSource(issued.svid, BundleSet.of({ x509: own ? [own] : [] }))
    const client = mtlsClientOptions(partnerSource, only(SERVER))
    expect((await get(served.port, client)).body.peer).toBe(`spiffe://${PARTNER}/x`)
    const chain = issued.svid.certificates.map((c) => c.der)
    expect(verifyX509Peer(chain, serverSource, authorizeAny()).id.toString()).toBe(`spiffe://${PARTNER}/x`)

    const deleted = await stack.cli(['bundle', 'delete', '--id', `spiffe://${PARTNER}`])
    expect(deleted.code, deleted.stderr).toBe(0)
    await waitFor(() => serverSource.getX509BundleForTrustDomain(partnerTd) === undefined, {
      timeoutMs: 15_000,
    })
    await expect(get(served.port, client)).rejects.toThrow()
    expect(() => verifyX509Peer(chain, serverSource, authorizeAny())).toThrow(
      expect.objectContaining({ code: 'ERR_BUNDLE_NOT_FOUND' }),
    )
    expect(served.handled).toEqual([`spiffe://${PARTNER}/x`])
  })
})
