import type { Command } from 'commander'
import { CheckpointForwarder } from '../../common/log/checkpoint-forwarder.js'
import { createLogger } from '../../common/log/logger.js'
import { PinoAuditLog } from '../../common/log/pino-audit-log.js'
import { IdentityError } from '../../lib/core/errors.js'
import { loadServerConfig } from '../../server/server-config.js'
import { collect, failAndExit } from '../output.js'
import { registerServerHealthcheck } from './server-healthcheck.js'

/** `tessera server run`. */
export function registerServerCommands(program: Command): void {
  const server = program.command('server').description('the trust-domain server')
  server
    .command('run')
    .description(
      'run the server: CA, registration entries, admin API (Unix socket, and mTLS on the TCP port for SVIDs of admin entries) and agent API (TCP + mTLS)',
    )
    .option('--config <file>', 'JSON config file')
    .option('--data-dir <dir>', 'state directory (default ./.tessera/server)')
    .option('--trust-domain <name>', 'trust domain (default tessera.local)')
    .option('--bind-address <addr>', 'agent API address (default 127.0.0.1)')
    .option('--bind-port <port>', 'agent API port (default 8081; 0 picks one)')
    .option('--admin-socket <path>', 'admin API socket (default <data-dir>/admin.sock)')
    .option('--admin-uid <uid>', 'another uid allowed on the admin socket (repeatable)', collect)
    .option('--default-x509-svid-ttl <duration>', 'X509-SVID TTL when an entry sets none (default 1h)')
    .option('--default-jwt-svid-ttl <duration>', 'JWT-SVID TTL when an entry sets none (default 5m)')
    .option(
      '--min-x509-svid-ttl <duration>',
      'shortest X509-SVID TTL an entry may ask for (default 1m; 0 in an entry still means the default TTL)',
    )
    .option('--min-jwt-svid-ttl <duration>', 'shortest JWT-SVID TTL an entry may ask for (default 30s)')
    .option('--ca-ttl <duration>', 'CA and JWT key lifetime (default 24h)')
    .option('--agent-svid-ttl <duration>', 'agent SVID TTL (default 1h)')
    .option('--join-token-ttl <duration>', 'join token TTL when none is asked (default 10m)')
    .option(
      '--pending-ttl <duration>',
      'how long a pending request (a workload that matched no entry) stays approvable after it was last seen (default 24h)',
    )
    .option(
      '--deny-ttl <duration>',
      'how long a denied request is remembered: the same uid, binary hash and path is no new request meanwhile (default 1h)',
    )
    .option(
      '--max-pending-requests <n>',
      'most pending requests kept; past it the least recently seen are dropped, counted and audited (default 1000)',
    )
    .option(
      '--human-scope <pattern>',
      'a task scope that needs a human: BeginTask for it waits for tessera approval (repeatable; * matches any characters but /, ** any)',
      collect,
    )
    .option(
      '--human-approval-timeout <duration>',
      'how long such a BeginTask waits for the decision (default 2m)',
    )
    .option(
      '--task-audience <pattern>',
      "an audience a task token may name (repeatable; * matches any characters but /, ** any); once one is given, task tokens name only the own trust domain's SPIFFE IDs and matching audiences (default: any audience, with a warning)",
      collect,
    )
    .option('--log-level <level>', 'error | warn | info | debug (default info)')
    .option('--log-format <format>', 'json | text (default json)')
    .option('--audit-log-path <path>', 'audit log file, - for stdout (default <data-dir>/audit.log)')
    .option('--audit-checkpoint-lines <count>', 'sign an audit checkpoint every so many lines (default 1000)')
    .option(
      '--audit-checkpoint-interval <duration>',
      'and at least this often while lines come (default 60s)',
    )
    .option(
      '--audit-summary-window <duration>',
      'repeated refusals of one kind within this window are audited as one summary line (default 10s)',
    )
    .option('--db-path <path>', 'SQLite datastore (default <data-dir>/datastore.sqlite3)')
    .option(
      '--jwt-issuer <url>',
      'the iss claim of every JWT-SVID and the OIDC discovery issuer, an https URL (cloud STS services need both equal)',
    )
    .option(
      '--oidc-discovery-port <port>',
      'serve OIDC discovery (/.well-known/openid-configuration and /keys: the JWT-SVID keys) on this port (0 picks one); needs --jwt-issuer',
    )
    .option('--oidc-discovery-address <addr>', 'OIDC discovery address (default 127.0.0.1)')
    .option('--oidc-tls-cert <file>', "PEM certificate chain for the issuer's host name")
    .option('--oidc-tls-key <file>', 'its PEM private key')
    .option(
      '--oidc-insecure-http',
      'serve OIDC discovery over plain HTTP: only behind a TLS terminator for the issuer host, or for local tests',
    )
    .option(
      '--new-ca',
      'when the CA key journal is missing or unreadable, create a new CA instead of refusing to start (audited; every agent and workload then needs the new trust bundle)',
    )
    .action(async (opts: Record<string, unknown>) => {
      try {
        await runServer(opts)
      } catch (err) {
        failAndExit(err)
      }
    })
  registerServerHealthcheck(server)
}

async function runServer(opts: Record<string, unknown>): Promise<void> {
  const { newCa, ...flags } = opts
  const config = loadServerConfig({ flags, env: process.env, cwd: process.cwd() })
  const log = createLogger({ level: config.logLevel, format: config.logFormat, name: 'server' })
  for (const warning of config.warnings) log.warn({ warning }, 'Configuration is unwise.')
  const onFailure = (err: unknown) =>
    log.error({ err, code: 'ERR_AUDIT_UNAVAILABLE' }, 'The audit log cannot be written.')
  const onRepair = (cutBytes: number) =>
    log.warn(
      { cutBytes, path: config.auditLogPath },
      'The audit log ended mid-line; the unfinished line was cut.',
    )
  const audit = PinoAuditLog.open(config.auditLogPath, {
    onFailure,
    onRepair,
    onMovedAside: (aside: string) =>
      log.warn(
        { aside, path: config.auditLogPath },
        'The audit log predates the hash chain; it was moved aside and a new chain starts.',
      ),
    checkpoints: { everyLines: config.auditCheckpointLines, everyMs: config.auditCheckpointIntervalMs },
  })
  const deps = { log, audit, auditJournal: audit.journal }
  // Loaded here, not at the top: every other command starts without the server's modules.
  const { startServer } = await import('../../server/server-app.js')
  const running = await startServer(config, deps, { newCa: newCa === true }).catch((err: unknown) => {
    const code = err instanceof IdentityError ? err.code : 'ERR_INTERNAL'
    log.error({ err, code }, 'The server cannot start.')
    audit.close()
    throw err
  })
  audit.setCheckpointSigner(() => running.svid())
  // The server's own checkpoints are kept with the agents' (DESIGN §10), off the audit write.
  const checkpoints = new CheckpointForwarder({
    send: (checkpoint) => running.reportCheckpoint(checkpoint),
    onError: (err) => log.warn({ err }, 'Storing an audit checkpoint failed.'),
  })
  audit.onCheckpoint(checkpoints.listener)
  const stop = async (signal: string) => {
    log.info({ signal }, 'Server stopping.')
    checkpoints.close()
    await running.stop()
    audit.close()
    process.exit(0)
  }
  process.once('SIGINT', () => void stop('SIGINT'))
  process.once('SIGTERM', () => void stop('SIGTERM'))
}
