// A tool author's program: it imports @tessera/spiffe by name only, as installed from the packed
// tarball into a fresh project (test/integration/package.test.ts). It prints one JSON line per fact
// it verified, which the test checks.
import { once } from 'node:events'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { type IdentityError, isIdentityError, SpiffeId, type X509Svid } from '@tessera/spiffe'
import { createMtlsServer, mtlsClientOptions, peerSpiffeId } from '@tessera/spiffe/tls'
import { type Authorizer, authorizeId, validateJwtSvid, verifyJwtPeer } from '@tessera/spiffe/verify'
import { JwtSource, X509Source } from '@tessera/spiffe/workload'

const serverId = SpiffeId.parse(process.argv[2] ?? '')
const clientId = SpiffeId.parse(process.argv[3] ?? '')
const AUDIENCE = 'package-consumer'

function report(fact: string, value: unknown): void {
  process.stdout.write(`${JSON.stringify({ fact, value })}\n`)
}

function codeOf(err: unknown): string {
  return isIdentityError(err) ? err.code : String((err as NodeJS.ErrnoException).code)
}

const pick = (id: SpiffeId) => (svids: ReadonlyArray<X509Svid>) => svids.find((svid) => svid.id.equals(id))

const serverSource = await X509Source.create({ picker: pick(serverId), timeoutMs: 20_000 })
const clientSource = await X509Source.create({ picker: pick(clientId), timeoutMs: 20_000 })
report('x509.server', serverSource.getX509Svid().id.toString())
report('x509.client', clientSource.getX509Svid().id.toString())

const refused: string[] = []
const server = createMtlsServer(
  serverSource,
  authorizeId(clientId),
  (options) =>
    https.createServer(options, (req, res) => res.end(peerSpiffeId(req.socket as TLSSocket)?.toString())),
  { onRefused: (err: IdentityError) => refused.push(err.code) },
)
server.listen(0, '127.0.0.1')
await once(server, 'listening')
const port = (server.address() as AddressInfo).port

function get(authorizer: Authorizer, source: X509Source): Promise<{ body: string; serverSeen?: string }> {
  return new Promise((resolve, reject) => {
    const options = mtlsClientOptions(source, authorizer)
    const req = https.request({ ...options, host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      const serverSeen = peerSpiffeId(res.socket as TLSSocket)?.toString()
      let body = ''
      res.on('data', (chunk: Buffer) => {
        body += chunk.toString()
      })
      res.on('end', () => resolve({ body, ...(serverSeen === undefined ? {} : { serverSeen }) }))
    })
    req.on('error', reject)
    req.end()
  })
}

const answer = await get(authorizeId(serverId), clientSource)
report('mtls.server-saw-client', answer.body)
report('mtls.client-saw-server', answer.serverSeen)
report(
  'mtls.client-refuses-wrong-server',
  await get(authorizeId(clientId), clientSource).then(
    () => 'accepted',
    (err: unknown) => codeOf(err),
  ),
)
await get(authorizeId(serverId), serverSource).catch(() => undefined)
report('mtls.server-refused', refused)

const jwtSource = await JwtSource.create({ timeoutMs: 20_000 })
const { token } = await jwtSource.fetchJwtSvid({ audience: AUDIENCE, spiffeId: clientId })
const svid = await validateJwtSvid(token, jwtSource, AUDIENCE, { nowMs: Date.now() })
report('jwt.validated', svid.id.toString())
report(
  'jwt.wrong-audience',
  await verifyJwtPeer(token, jwtSource, 'someone-else', authorizeId(clientId)).then(
    () => 'accepted',
    (err: unknown) => codeOf(err),
  ),
)

server.close()
serverSource.close()
clientSource.close()
jwtSource.close()
