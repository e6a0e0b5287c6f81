import { type Command, Option } from 'commander'
import { loadAgentConfig } from '../../agent/agent-config.js'
import { createLogger } from '../../common/log/logger.js'
import { PinoAuditLog } from '../../common/log/pino-audit-log.js'
import { IdentityError } from '../../lib/core/errors.js'
import { describeFailure, failAndExit } from '../output.js'

/** Adds `tessera agent run` to the `agent` command group (creating the group if needed). */
export function registerAgentRunCommand(program: Command): void {
  const agent =
    program.commands.find((c) => c.name() === 'agent') ?? program.command('agent').description('agents')
  agent
    .command('run')
    .description('run the agent: attest to the server, then serve the SPIFFE Workload API on a Unix socket')
    .option('--config <file>', 'JSON config file')
    .option(
      '--data-dir <dir>',
      'state directory: the agent SVID and key live here, 0600 (default ./.tessera/agent)',
    )
    .option('--server-address <host:port>', "the server's agent API (default 127.0.0.1:8081)")
    .option('--socket <path>', 'Workload API socket (default <data-dir>/public/api.sock)')
    .option('--trust-domain <name>', 'trust domain (default tessera.local)')
    .option(
      '--join-token <token>',
      'one-time join token for the first attestation (prefer TESSERA_AGENT_JOIN_TOKEN)',
    )
    .option('--trust-bundle <file>', 'PEM bundle to trust the server with before the first attestation')
    .option('--insecure-bootstrap', 'trust the first server reached (development only)')
    .option(
      '--hash-size-limit-bytes <n>',
      'largest executable hashed for unix:sha256 (0 = no limit, <0 = off)',
    )
    .option('--allow-unauthenticated-verifiers', 'let callers with no identity fetch bundles')
    .option('--max-connections-per-uid <n>', 'Workload API connections one uid may hold (default 1024)')
    .option(
      '--connection-idle-timeout <duration>',
      'close a Workload API connection idle (no call, no stream) this long (default 5m)',
    )
    .option(
      '--audit-summary-window <duration>',
      'repeated refusals of one kind within this window are audited as one summary line (default 10s)',
    )
    .option(
      '--begin-task-per-second <n>',
      'BeginTask calls one uid and executable may make per second, after a burst of 4x (default 5)',
    )
    .option('--log-level <level>', 'error | warn | info | debug (default info)')
    .option('--log-format <format>', 'json | text (default json)')
    .option('--audit-log-path <path>', 'audit log file, - for stdout (default <data-dir>/audit.log)')
    .option('--audit-checkpoint-lines <count>', 'sign an audit checkpoint every so many lines (default 1000)')
    .option(
      '--audit-checkpoint-interval <duration>',
      'and at least this often while lines come (default 60s)',
    )
    .addOption(
      new Option(
        '--unsafe-bench-no-binding-checks',
        'benchmarks only: do not bind Workload API connections to their process (DESIGN §6.1)',
      ).hideHelp(),
    )
    .action(async (opts: Record<string, unknown>) => {
      try {
        await runAgent(opts)
      } catch (err) {
        failAndExit(err)
      }
    })
}

async function runAgent(flags: Record<string, unknown>): Promise<void> {
  const config = loadAgentConfig({ flags, env: process.env, cwd: process.cwd() })
  const log = createLogger({ level: config.logLevel, format: config.logFormat, name: 'agent' })
  for (const warning of config.warnings) log.warn({ warning }, 'Configuration is unwise.')
  // Before the audit log creates it 0700: workloads of other users must reach the socket inside.
  // Loaded here, not at the top: every other command starts without the agent's modules.
  const { prepareAgentDataDir, startAgent } = await import('../../agent/agent-app.js')
  await prepareAgentDataDir(config.dataDir)
  const audit = PinoAuditLog.open(config.auditLogPath, {
    onMovedAside: (aside: string) =>
      log.warn(
        { aside, path: config.auditLogPath },
        'The audit log predates the hash chain; it was moved aside and a new chain starts.',
      ),
    checkpoints: { everyLines: config.auditCheckpointLines, everyMs: config.auditCheckpointIntervalMs },
  })
  const running = await startAgent(config, {
    log,
    audit,
    onRefused: () => {
      process.stderr.write(
        `${describeFailure(new IdentityError('ERR_AGENT_UNAUTHORIZED', 'the server refused this agent (evicted or banned): start it again with a new join token (tessera token generate)'))}\n`,
      )
      void stop('evicted', 3)
    },
  })
  audit.setCheckpointSigner(() => running.svid())
  audit.onCheckpoint(running.checkpointListener)
  let stopping = false
  async function stop(reason: string, exitCode = 0): Promise<void> {
    if (stopping) return
    stopping = true
    log.info({ reason }, 'Agent stopping.')
    await running.stop()
    audit.close()
    process.exit(exitCode)
  }
  process.once('SIGINT', () => void stop('SIGINT'))
  process.once('SIGTERM', () => void stop('SIGTERM'))
}
