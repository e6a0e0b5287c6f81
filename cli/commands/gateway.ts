import type { Command } from 'commander'
import type { Logger } from 'pino'
import { createLogger } from '../../common/log/logger.js'
import { loadGatewayConfig } from '../../gateway/gateway-config.js'
import { collect, failAndExit } from '../output.js'
import { oneLine } from './workload-command.js'

/** The flags of `tessera gateway` (the config's keys; see `loadGatewayConfig`). */
const GATEWAY_FLAGS: ReadonlyArray<readonly [flags: string, description: string, isRepeatable?: boolean]> = [
  ['--config <file>', 'JSON config file'],
  ['--listen <host:port>', 'where to listen, e.g. 127.0.0.1:8080 (port 0 picks one)'],
  ['--upstream <address>', 'the tool: unix:///path/tool.sock or http://127.0.0.1:PORT'],
  ['--audience <aud>', 'audience bearer JWT-SVIDs must carry (repeatable)', true],
  ['--policy <file>', 'JSON policy: allow/deny rules over SPIFFE IDs, methods, paths, tools'],
  [
    '--allow-origin <origin>',
    'a browser origin allowed to call, e.g. https://app.example (repeatable)',
    true,
  ],
  [
    '--host <name>',
    'a name the Host header may carry (repeatable; default the listen host and localhost)',
    true,
  ],
  ['--tls', "serve HTTPS with the gateway's own X509-SVID and accept client SVIDs (mTLS)"],
  [
    '--require-proof',
    'refuse bearer JWT-SVIDs: callers send a WIT-SVID with a Workload-Proof-Token for each request (or a client SVID with --tls)',
  ],
  [
    '--spiffe-id <id>',
    'with --tls: present the X509-SVID with this SPIFFE ID (default the first, the default one); no such SVID is an error',
  ],
  [
    '--socket <address>',
    'Workload API (default $SPIFFE_ENDPOINT_SOCKET, else ./.tessera/agent/public/api.sock)',
  ],
  ['--upstream-timeout <duration>', 'how long the tool may take to answer (default 30s)'],
  [
    '--throttle-failures <n>',
    'failed authentications from one local uid (or remote address) before it is throttled (default 5)',
  ],
  ['--throttle-delay <duration>', 'the first throttle block; each further failure doubles it (default 1s)'],
  ['--throttle-max-delay <duration>', 'the longest throttle block (default 5m)'],
  ['--log-level <level>', 'error | warn | info | debug (default info)'],
  ['--log-format <format>', 'json | text (default json)'],
  ['--audit-log-path <path>', 'audit log file, - for stdout (default -)'],
  ['--audit-checkpoint-lines <count>', 'sign an audit checkpoint every so many lines (default 1000)'],
  ['--audit-checkpoint-interval <duration>', 'and at least this often while lines come (default 60s)'],
]

/** `tessera gateway`: an identity-checking reverse proxy in front of a local tool. */
export function registerGatewayCommand(program: Command): void {
  const command = program
    .command('gateway')
    .description(
      'put a local tool behind per-request SPIFFE authentication: every request and WebSocket upgrade needs an SVID',
    )
  for (const [flags, description, isRepeatable] of GATEWAY_FLAGS) {
    if (isRepeatable === true) command.option(flags, description, collect)
    else command.option(flags, description)
  }
  command.action(async (opts: Record<string, unknown>) => {
    try {
      await runGateway(opts)
    } catch (err) {
      failAndExit(oneLine(err))
    }
  })
}

/** Closes everything on SIGINT/SIGTERM, then exits. */
function stopOnSignals(log: Logger, closers: ReadonlyArray<() => unknown>): void {
  let isStopping = false
  const stop = async (reason: string) => {
    if (isStopping) return
    isStopping = true
    log.info({ reason }, 'Gateway stopping.')
    for (const close of closers) await close()
    process.exit(0)
  }
  process.once('SIGINT', () => void stop('SIGINT'))
  process.once('SIGTERM', () => void stop('SIGTERM'))
}

async function runGateway(flags: Record<string, unknown>): Promise<void> {
  const config = loadGatewayConfig({ flags, env: process.env, cwd: process.cwd() })
  const log = createLogger({ level: config.logLevel, format: config.logFormat, name: 'gateway' })
  for (const warning of config.warnings) log.warn({ warning }, 'Configuration is unwise.')
  // Loaded here, not at the top: every other command starts without the gateway's modules.
  const { startGateway } = await import('../../gateway/gateway-app.js')
  const gateway = await startGateway(config, log)
  log.info(
    { listen: gateway.listen, upstream: config.upstream.uri, tls: config.tls, spiffeId: gateway.spiffeId },
    'gateway ready',
  )
  stopOnSignals(log, [() => gateway.close()])
}
