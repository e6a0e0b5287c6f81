import type { Command } from 'commander'
import { loadBrokerConfig } from '../../broker/broker-config.js'
import {
  CONFIG_FLAG,
  type FlagRow,
  HOST_FLAG,
  listenFlag,
  registerGuardedAppCommand,
  SOCKET_FLAG,
  startAppLog,
  stopOnSignals,
  throttleAndLogFlags,
} from './guarded-app-command.js'

/** The flags of `tessera broker` (the config's keys; see `loadBrokerConfig`). */
const BROKER_FLAGS: readonly FlagRow[] = [
  CONFIG_FLAG,
  listenFlag('127.0.0.1:8081'),
  [
    '--routes <file>',
    'JSON routes file: path prefixes, HTTPS upstreams, credentials, policies, egress allowlist',
  ],
  ['--secrets <file>', 'secrets file (JSON or NAME=VALUE), mode 0600 or 0400, owned by this user'],
  ['--audience <aud>', 'audience JWT-SVIDs and task tokens must carry (repeatable)', true],
  ['--upstream-ca <file>', "PEM CA certificates to verify upstreams' TLS with instead of the system's"],
  HOST_FLAG,
  ['--tls', "serve HTTPS with the broker's own X509-SVID and accept client SVIDs (mTLS) on routes"],
  ['--require-proof', 'on routes, refuse bearer JWT-SVIDs: a WIT-SVID with a Workload-Proof-Token is needed'],
  SOCKET_FLAG,
  ['--upstream-timeout <duration>', 'how long an upstream may take to answer (default 30s)'],
  ['--max-response-bytes <n>', 'the largest upstream answer passed on (default 67108864)'],
  ...throttleAndLogFlags('failed authentications from one local uid before it is throttled (default 5)'),
]

/** `tessera broker`: injects credentials agents never hold, and lets them reach only listed hosts. */
export function registerBrokerCommand(program: Command): void {
  registerGuardedAppCommand(program, {
    name: 'broker',
    description:
      'hold upstream credentials for agents: forward allowed calls with the credential injected and scrubbed from answers; a forward proxy with a per-identity egress allowlist',
    flags: BROKER_FLAGS,
    run: runBroker,
  })
}

async function runBroker(flags: Record<string, unknown>): Promise<void> {
  const config = loadBrokerConfig({ flags, env: process.env, cwd: process.cwd() })
  const log = startAppLog(config, 'broker')
  const { startBroker } = await import('../../broker/broker-app.js')
  const broker = await startBroker(config, log)
  log.info({ listen: broker.listen, routes: broker.routes, egressRules: broker.egressRules }, 'broker ready')
  stopOnSignals(log, 'Broker', () => broker.close())
}
