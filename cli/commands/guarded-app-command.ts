import type { Command } from 'commander'
import type { Logger } from 'pino'
import { createLogger, type LogFormat, type LogLevel } from '../../common/log/logger.js'
import { collect, failAndExit } from '../output.js'
import { oneLine } from './workload-command.js'

/** One flag of a command: commander's flags, its help text, and whether it may be given again. */
export type FlagRow = readonly [flags: string, description: string, isRepeatable?: boolean]

/** The flags `tessera gateway` and `tessera broker` share, by place: each command lists its own between. */
export const CONFIG_FLAG: FlagRow = ['--config <file>', 'JSON config file']

export function listenFlag(example: string): FlagRow {
  return ['--listen <host:port>', `where to listen, e.g. ${example} (port 0 picks one)`]
}

export const HOST_FLAG: FlagRow = [
  '--host <name>',
  'a name the Host header may carry (repeatable; default the listen host and localhost)',
  true,
]

export const SOCKET_FLAG: FlagRow = [
  '--socket <address>',
  'Workload API (default $SPIFFE_ENDPOINT_SOCKET, else ./.tessera/agent/public/api.sock)',
]

/** The throttle, log and audit flags, last on both commands; `failuresHelp` says whose failures count. */
export function throttleAndLogFlags(failuresHelp: string): readonly FlagRow[] {
  return [
    ['--throttle-failures <n>', failuresHelp],
    ['--throttle-delay <duration>', 'the first throttle block; each further failure doubles it (default 1s)'],
    ['--throttle-max-delay <duration>', 'the longest throttle block (default 5m)'],
    ['--log-level <level>', 'error | warn | info | debug (default info)'],
    ['--log-format <format>', 'json | text (default json)'],
    ['--audit-log-path <path>', 'audit log file, - for stdout (default -)'],
    ['--audit-checkpoint-lines <count>', 'sign an audit checkpoint every so many lines (default 1000)'],
    ['--audit-checkpoint-interval <duration>', 'and at least this often while lines come (default 60s)'],
  ]
}

/** Adds `rows` to `command` in order, a repeatable one collecting its values into a list. */
export function addFlags(command: Command, rows: readonly FlagRow[]): Command {
  for (const [flags, description, isRepeatable] of rows) {
    if (isRepeatable === true) command.option(flags, description, collect)
    else command.option(flags, description)
  }
  return command
}

/** On the first SIGINT/SIGTERM: logs `<app> stopping.`, runs `close`, then exits. */
export function stopOnSignals(log: Logger, app: string, close: () => Promise<unknown>): void {
  let isStopping = false
  const stop = async (reason: string) => {
    if (isStopping) return
    isStopping = true
    log.info({ reason }, `${app} stopping.`)
    await close()
    process.exit(0)
  }
  process.once('SIGINT', () => void stop('SIGINT'))
  process.once('SIGTERM', () => void stop('SIGTERM'))
}

/** A guarded app's command: its name, one-line description, flag rows, and what it runs with the parsed flags. */
export interface GuardedAppCommand {
  readonly name: 'gateway' | 'broker'
  readonly description: string
  readonly flags: readonly FlagRow[]
  run(flags: Record<string, unknown>): Promise<void>
}

/** Adds `tessera <name>` to `program`: its flags, and `run`, whose failure is printed on one line (exit 1). */
export function registerGuardedAppCommand(program: Command, spec: GuardedAppCommand): void {
  const command = program.command(spec.name).description(spec.description)
  addFlags(command, spec.flags).action(async (opts: Record<string, unknown>) => {
    try {
      await spec.run(opts)
    } catch (err) {
      failAndExit(oneLine(err))
    }
  })
}

/** The app's root logger, as its config says, with each config warning logged. */
export function startAppLog(
  config: {
    readonly logLevel: LogLevel
    readonly logFormat: LogFormat
    readonly warnings: readonly string[]
  },
  name: 'gateway' | 'broker',
): Logger {
  const log = createLogger({ level: config.logLevel, format: config.logFormat, name })
  for (const warning of config.warnings) log.warn({ warning }, 'Configuration is unwise.')
  return log
}
