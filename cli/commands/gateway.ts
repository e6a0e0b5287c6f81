import type { Command } from 'commander'
import { loadGatewayConfig } from '../../gateway/gateway-config.js'
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

/** The flags of `tessera gateway` (the config's keys; see `loadGatewayConfig`). */
const GATEWAY_FLAGS: readonly FlagRow[] = [
  CONFIG_FLAG,
  listenFlag('127.0.0.1:8080'),
  ['--upstream <address>', 'the tool: unix:///path/tool.sock or http://127.0.0.1:PORT'],
  ['--audience <aud>', 'audience bearer JWT-SVIDs must carry (repeatable)', true],
  ['--policy <file>', 'JSON policy: allow/deny rules over SPIFFE IDs, methods, paths, tools'],
  [
    '--allow-origin <origin>',
    'a browser origin allowed to call, e.g. https://app.example (repeatable)',
    true,
  ],
  HOST_FLAG,
  ['--tls', "serve HTTPS with the gateway's own X509-SVID and accept client SVIDs (mTLS)"],
  [
    '--require-proof',
    'refuse bearer JWT-SVIDs: callers send a WIT-SVID with a Workload-Proof-Token for each request (or a client SVID with --tls)',
  ],
  [
    '--spiffe-id <id>',
    'with --tls: present the X509-SVID with this SPIFFE ID (default the first, the default one); no such SVID is an error',
  ],
  SOCKET_FLAG,
  ['--upstream-timeout <duration>', 'how long the tool may take to answer (default 30s)'],
  ...throttleAndLogFlags(
    'failed authentications from one local uid (or remote address) before it is throttled (default 5)',
  ),
]

/** `tessera gateway`: an identity-checking reverse proxy in front of a local tool. */
export function registerGatewayCommand(program: Command): void {
  registerGuardedAppCommand(program, {
    name: 'gateway',
    description:
      'put a local tool behind per-request SPIFFE authentication: every request and WebSocket upgrade needs an SVID',
    flags: GATEWAY_FLAGS,
    run: runGateway,
  })
}

async function runGateway(flags: Record<string, unknown>): Promise<void> {
  const config = loadGatewayConfig({ flags, env: process.env, cwd: process.cwd() })
  const log = startAppLog(config, 'gateway')
  // Loaded here, not at the top: every other command starts without the gateway's modules.
  const { startGateway } = await import('../../gateway/gateway-app.js')
  const gateway = await startGateway(config, log)
  log.info(
    { listen: gateway.listen, upstream: config.upstream.uri, tls: config.tls, spiffeId: gateway.spiffeId },
    'gateway ready',
  )
  stopOnSignals(log, 'Gateway', () => gateway.close())
}
