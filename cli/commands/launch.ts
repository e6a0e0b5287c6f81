import type { Command } from 'commander'
import { createLogger, LOG_LEVELS, type LogLevel } from '../../common/log/logger.js'
import { IdentityError } from '../../lib/core/errors.js'
import { DEFAULT_LAUNCH_SOCKET_DIR, runLaunch } from '../launch/launcher.js'
import { collect, failAndExit } from '../output.js'
import { loadWorkloadConfig, oneLine } from './workload-command.js'

interface LaunchOptions {
  readonly as: string
  readonly broker?: string
  readonly brokerAudience?: string
  readonly toolAudience?: string[]
  readonly isolateNetwork?: boolean
  readonly task?: boolean
  readonly scope?: string[]
  readonly audience?: string[]
  readonly purpose?: string
  readonly socket?: string
  readonly socketDir: string
  readonly logLevel: string
}

/**
 * Exit codes of a launch that could not start CMD (CMD's own code otherwise): sysexits' EX_USAGE for
 * a malformed request, EX_NOPERM for a step that needs privilege, 127 (the shell's) for a command
 * that does not exist, 1 for anything else.
 */
export const LAUNCH_EXIT_CODES = {
  ERR_LAUNCH_INVALID: 64,
  ERR_LAUNCH_PRIVILEGE: 77,
  ERR_LAUNCH_COMMAND_NOT_FOUND: 127,
} as const

async function launch(command: string[], options: LaunchOptions): Promise<void> {
  const level = (LOG_LEVELS as readonly string[]).includes(options.logLevel) ? options.logLevel : 'warn'
  const log = createLogger({ level: level as LogLevel, format: 'text', name: 'launch' })
  try {
    const config = loadWorkloadConfig({ ...(options.socket !== undefined && { socket: options.socket }) })
    const code = await runLaunch({
      name: options.as,
      command,
      agent: config.endpoint,
      ...(options.broker !== undefined && { broker: options.broker }),
      ...(options.brokerAudience !== undefined && { brokerAudience: options.brokerAudience }),
      ...(options.toolAudience !== undefined && { toolAudiences: options.toolAudience }),
      isolateNetwork: options.isolateNetwork === true,
      ...(options.task === true && {
        task: {
          scopes: options.scope ?? [],
          audiences: options.audience ?? [],
          purpose: options.purpose ?? '',
        },
      }),
      socketDir: options.socketDir,
      env: process.env,
      cwd: process.cwd(),
      log,
    })
    process.exit(code)
  } catch (err) {
    const code =
      err instanceof IdentityError ? (LAUNCH_EXIT_CODES as Record<string, number>)[err.code] : undefined
    failAndExit(oneLine(err), code ?? 1)
  }
}

/** `tessera launch --as NAME -- CMD…` (DESIGN §13, docs/launch.md). */
export function registerLaunchCommand(program: Command): void {
  program
    .command('launch')
    .description(
      'run CMD as the service account tessera-NAME (created on first use), with SPIFFE_ENDPOINT_SOCKET ' +
        'at a Workload API that answers only CMD and its descendants (their identity is the entry with ' +
        'the selector tessera:launch:NAME) and HTTPS_PROXY at the broker; exit with CMD’s code. Needs root',
    )
    .argument('<cmd...>', 'the command to run (after --)')
    .requiredOption(
      '--as <name>',
      'the launch name: service account tessera-NAME, selector tessera:launch:NAME',
    )
    .option(
      '--broker <address>',
      'the broker: http://HOST:PORT or unix:/PATH; HTTPS_PROXY and HTTP_PROXY lead to it',
    )
    .option(
      '--broker-audience <aud>',
      "attach the launched process's JWT-SVID for this audience to every request to the broker (Proxy-Authorization: Bearer)",
    )
    .option(
      '--tool-audience <aud>',
      "with --broker-audience: also hand the broker the launched process's JWT-SVID for this audience, which it presents only to a Tessera gateway of that audience (repeatable)",
      collect,
    )
    .option(
      '--isolate-network',
      'run CMD in a network namespace of its own with only loopback; its only way out is a relay to the broker',
    )
    .option(
      '--task',
      'begin a task as CMD (its token in TESSERA_TASK_TOKEN, its id in TESSERA_TASK_ID), ended when CMD exits',
    )
    .option('--scope <scope>', 'with --task: an OAuth scope the task holds (repeatable)', collect)
    .option('--audience <aud>', 'with --task: who the task token is for (repeatable)', collect)
    .option('--purpose <text>', 'with --task: why, written into the token and the audit')
    .option(
      '--socket <address>',
      "the agent's Workload API (default $SPIFFE_ENDPOINT_SOCKET, else ./.tessera/agent/public/api.sock)",
    )
    .option('--socket-dir <dir>', 'where the per-launch Workload API sockets go', DEFAULT_LAUNCH_SOCKET_DIR)
    .option('--log-level <level>', "the launcher's own log level (error, warn, info, debug)", 'warn')
    .action((cmd: string[], options: LaunchOptions) => launch(cmd, options))
}
