// Calls the agent's DelegatedIdentity.FetchJWTSVIDs for another process and prints one JSON line.
// Plain JavaScript (run from dist/), so tests can start it as any uid.
// Usage: node delegate-probe.mjs <agent socket> <pid> <start time | "own"> <launch name>
import { readFileSync } from 'node:fs'
import { credentials, Metadata } from '@grpc/grpc-js'
import { delegatedApi } from '../../dist/common/grpc/protos.js'

const [socket, pid, start, name] = process.argv.slice(2)
const startTime = (p) => readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ')[19]
const client = new (delegatedApi().tessera.agent.v1.DelegatedIdentity)(
  `unix://${socket}`,
  credentials.createInsecure(),
)
const md = new Metadata()
md.set('workload.spiffe.io', 'true')
const subject = {
  pid: Number(pid),
  start_time: start === 'own' ? startTime(pid) : start,
  launch_name: name ?? '',
}
client.FetchJWTSVIDs(
  { subject, audience: ['probe'] },
  md,
  { deadline: new Date(Date.now() + 10_000) },
  (err, res) => {
    const out = err
      ? { ok: false, code: err.code, errorCode: err.metadata?.get('tessera-error-code')[0] }
      : { ok: true, ids: res.svids.map((s) => s.spiffe_id) }
    process.stdout.write(`${JSON.stringify({ uid: process.getuid(), ...out })}\n`)
    client.close()
  },
)
