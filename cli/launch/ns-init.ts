// The first process of an isolated launch, run by the launcher as `unshare --net -- node ns-init.js`
// (root, in a new network namespace): brings loopback up, listens on 127.0.0.1 inside the namespace
// and relays to the broker's Unix socket (reachable from inside: it is a file), then starts CMD as
// the service account with HTTPS_PROXY pointing at that relay, and exits with CMD's exit code.
import { spawn, spawnSync } from 'node:child_process'
import { exitCodeOf } from './child-exit.js'
import { startForwarder } from './forwarder.js'
import { NS_INIT_ENV, type NsInitPlan } from './ns-init-plan.js'

function fail(message: string, code: number, errorCode = 'ERR_LAUNCH_PRIVILEGE'): never {
  process.stderr.write(`error ${errorCode}: ${message}\n`)
  process.exit(code)
}

async function main(): Promise<void> {
  const plan = JSON.parse(process.env[NS_INIT_ENV] ?? 'null') as NsInitPlan | null
  if (!plan) fail('ns-init started without a plan', 70)
  const lo = spawnSync('ip', ['link', 'set', 'lo', 'up'], { stdio: ['ignore', 'ignore', 'pipe'] })
  if (lo.status !== 0) fail(`bringing up loopback in the new network namespace failed: ${lo.stderr}`, 77)
  const env: Record<string, string> = { ...plan.env }
  if (plan.brokerPath !== undefined) {
    const relay = await startForwarder({ host: '127.0.0.1' }, { path: plan.brokerPath })
    const proxy = `http://127.0.0.1:${relay.port}`
    Object.assign(env, { HTTPS_PROXY: proxy, HTTP_PROXY: proxy, https_proxy: proxy, http_proxy: proxy })
  }
  const child = spawn(plan.file, [...plan.args], { stdio: 'inherit', uid: plan.uid, gid: plan.gid, env })
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, () => child.kill(s))
  child.once('error', (err) =>
    fail(`cannot run ${plan.file}: ${err.message}`, 127, 'ERR_LAUNCH_COMMAND_NOT_FOUND'),
  )
  child.once('exit', (code, signal) => process.exit(exitCodeOf(code, signal)))
}

void main()
