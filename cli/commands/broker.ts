import type { Command } from 'commander'
import type { Logger } from 'pino'
import { loadBrokerConfig } from '../../broker/broker-config.js'
import { createLogger } from '../../common/log/logger.js'
import { collect, failAndExit } from '../output.js'
import { oneLine } from './workload-command.js'

/** The flags of `tessera broker` (the config's keys; see `loadBrokerConfig`). */
const BROKER_FLAGS: ReadonlyArray<readonly [flags: string, description: string, isRepeatable?: boolean]> = [
  ['--config <file>', 'JSON config file'],
  ['--listen <host:port>', 'where to listen, e.g. 127.0.0.1:8081 (port 0 picks one)'],
  [
    '--routes <file>',
    'JSON routes file: path prefixes, HTTPS upstreams, credentials, policies, egress allowlist',
  ],
  ['--secrets <file>', 'secrets file (JSON or NAME=VALUE), mode 0600 or 0400, owned by this user'],
  ['--audience <aud>', 'audience JWT-SVIDs and task tokens must carry (repeatable)', true],
  ['--upstream-ca <file>', "PEM CA certificates to verify upstreams' TLS with instead of the system's"],
  [
    '--host <name>',
    'a name the Host header may carry (repeatable; default the listen host and localhost)',
    true,
  ],
  ['--tls', "serve HTTPS with the broker's own X509-SVID and accept client SVIDs (mTLS) on routes"],
  ['--require-proof', 'on routes, refuse bearer JWT-SVIDs: a WIT-SVID with a Workload-Proof-Token is needed'],
  [
    '--socket <address>',
    'Workload API (default $SPIFFE_ENDPOINT_SOCKET, else ./.tessera/agent/public/api.sock)',
  ],
  ['--upstream-timeout <duration>', 'how long an upstream may take to answer (default 30s)'],
  ['--max-response-bytes <n>', 'the largest upstream answer passed on (default 67108864)'],
  ['--throttle-failures <n>', 'failed authentications from one local uid before it is throttled (default 5)'],
  ['--throttle-delay <duration>', 'the first throttle block; each further failure doubles it (default 1s)'],
  ['--throttle-max-delay <duration>', 'the longest throttle block (default 5m)'],
  ['--log-level <level>', 'error | warn | info | debug (default info)'],
  ['--log-format <format>', 'json | text (default json)'],
  ['--audit-log-path <path>', 'audit log file, - for stdout (default -)'],
  ['--audit-checkpoint-lines <count>', 'sign an audit checkpoint every so many lines (default 1000)'],
  ['--audit-checkpoint-interval <duration>', 'and at least this often while lines come (default 60s)'],
]

/** `tessera broker`: injects credentials agents never hold, and lets them reach only listed hosts. */
export function registerBrokerCommand(program: Command): void {
  const command = program
    .command('broker')
    .description(
      'hold upstream credentials for agents: forward allowed calls with the credential injected and scrubbed from answers; a forward proxy with a per-identity egress allowlist',
    )
  for (const [flags, description, isRepeatable] of BROKER_FLAGS) {
    if (isRepeatable === true) command.option(flags, description, collect)
    else command.option(flags, description)
  }
  command.action(async (opts: Record<string, unknown>) => {
    try {
      await runBroker(opts)
    } catch (err) {
      failAndExit(oneLine(err))
    }
  })
}

function stopOnSignals(log: Logger, close: () => Promise<void>): void {
  let isStopping = false
  const stop = async (reason: string) => {
    if (isStopping) return
    isStopping = true
    log.info({ reason }, 'Broker stopping.')
    await close()
    process.exit(0)
  }
  process.once('SIGINT', () => void stop('SIGINT'))
  process.once('SIGTERM', () => void stop('SIGTERM'))
}

async function runBroker(flags: Record<string, unknown>): Promise<void> {
  const config = loadBrokerConfig({ flags, env: process.env, cwd: process.cwd() })
  const log = createLogger({ level: config.logLevel, format: config.logFormat, name: 'broker' })
  for (const warning of config.warnings) log.warn({ warning }, 'Configuration is unwise.')
  const { startBroker } = await import('../../broker/broker-app.js')
  const broker = await startBroker(config, log)
  log.info({ listen: broker.listen, routes: broker.routes, egressRules: broker.egressRules }, 'broker ready')
  stopOnSignals(log, () => broker.close())
}
