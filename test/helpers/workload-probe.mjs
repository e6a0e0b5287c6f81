// A workload process for tests: calls the Workload API once over the socket named in argv and prints
// one JSON line with what it got. Plain JavaScript (run from dist/), so tests can start it as any uid.
// Usage: node workload-probe.mjs <socket | env (for $SPIFFE_ENDPOINT_SOCKET)> x509 | jwt <aud>... | x509-bundles | jwt-bundles | validate <aud> <token> | no-header
import { credentials, Metadata } from '@grpc/grpc-js'
import { workloadApi } from '../../dist/common/grpc/protos.js'

const [socket, action, ...args] = process.argv.slice(2)
const target = socket === 'env' ? process.env.SPIFFE_ENDPOINT_SOCKET : `unix://${socket}`
const client = new (workloadApi().SpiffeWorkloadAPI)(target, credentials.createInsecure())
const md = new Metadata()
if (action !== 'no-header') md.set('workload.spiffe.io', 'true')
const deadline = new Date(Date.now() + 10_000)

function done(result) {
  process.stdout.write(`${JSON.stringify({ pid: process.pid, uid: process.getuid(), ...result })}\n`)
  client.close()
  process.exit(0)
}
const fail = (err) =>
  done({
    ok: false,
    code: err.code,
    details: err.details,
    errorCode: err.metadata?.get('tessera-error-code')[0],
  })

function firstOf(call, map) {
  call.on('data', (m) => {
    call.cancel()
    done({ ok: true, ...map(m) })
  })
  call.on('error', (err) => {
    if (err.code !== 1) fail(err)
  })
}

switch (action) {
  case 'x509':
    firstOf(client.FetchX509SVID({}, md, { deadline }), (m) => ({
      ids: m.svids.map((s) => s.spiffe_id),
      hints: m.svids.map((s) => s.hint),
      certs: m.svids.map((s) => s.x509_svid.toString('base64')),
      bundle: m.svids[0]?.bundle.toString('base64'),
      federated: Object.keys(m.federated_bundles),
    }))
    break
  case 'x509-bundles':
    firstOf(client.FetchX509Bundles({}, md, { deadline }), (m) => ({ trustDomains: Object.keys(m.bundles) }))
    break
  case 'jwt-bundles':
    firstOf(client.FetchJWTBundles({}, md, { deadline }), (m) => ({
      jwks: Object.fromEntries(Object.entries(m.bundles).map(([k, v]) => [k, JSON.parse(v.toString())])),
    }))
    break
  case 'jwt':
  case 'no-header':
    client.FetchJWTSVID({ audience: args.length ? args : ['probe'] }, md, { deadline }, (err, res) =>
      err
        ? fail(err)
        : done({ ok: true, ids: res.svids.map((s) => s.spiffe_id), tokens: res.svids.map((s) => s.svid) }),
    )
    break
  case 'validate':
    client.ValidateJWTSVID({ audience: args[0], svid: args[1] }, md, { deadline }, (err, res) =>
      err ? fail(err) : done({ ok: true, id: res.spiffe_id, claims: res.claims }),
    )
    break
  default:
    done({ ok: false, details: `unknown action ${action}` })
}
