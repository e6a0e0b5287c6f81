import { type Command, Option } from 'commander'
import { ConfigError } from '../../common/config/config-source.js'
import { loadWorkloadCliConfig } from '../../common/config/workload-endpoint.js'
import { IdentityError } from '../../lib/core/errors.js'
import { type AdminClients, connectAdmin } from '../admin-client.js'
import { loadAdminCliConfig } from '../cli-config.js'
import { failAndExit } from '../output.js'
import { connectRemoteAdmin } from '../remote-admin-client.js'

/** `--output`: human-readable lines (the default) or JSON. */
export type OutputFormat = 'human' | 'json'

/** The options every admin command has. */
export interface AdminOptions {
  readonly socket?: string
  readonly serverAddress?: string
  readonly output?: OutputFormat
}

/** Where a command writes its result. */
export interface Output {
  readonly format: OutputFormat
  /** Prints `value` as JSON, or `human(value)` as lines, to stdout. */
  print<T>(value: T, human: (value: T) => string): void
}

/** Adds `--socket`, `--server-address` (unless `remote: false`: the command works on the socket only) and `--output` (unless `output: false`: the command only talks to people) to an admin command; returns it. */
export function withAdminOptions(
  command: Command,
  options: { remote?: boolean; output?: boolean } = {},
): Command {
  command.option(
    '--socket <path>',
    'admin API socket (default $TESSERA_ADMIN_SOCKET, else ./.tessera/server/admin.sock)',
  )
  if (options.remote ?? true)
    command.option(
      '--server-address <host:port>',
      "instead of the socket: the server's TCP port, over mTLS, as this process's X509-SVID from the Workload API ($SPIFFE_ENDPOINT_SOCKET), whose entry must be an admin entry",
    )
  if (options.output === false) return command
  return command.addOption(
    new Option('--output <format>', 'output format (default human)').choices(['human', 'json']),
  )
}

function makeOutput(format: OutputFormat): Output {
  return {
    format,
    print(value, human) {
      const text = format === 'json' ? JSON.stringify(value, null, 2) : human(value)
      process.stdout.write(text.endsWith('\n') ? text : `${text}\n`)
    },
  }
}

/** A config error on one line: every problem, separated by `; `. */
function oneLine(err: unknown): unknown {
  return err instanceof ConfigError ? new IdentityError(err.code, err.problems.join('; ')) : err
}

/**
 * The commander action of an admin command: loads the socket setting, connects, runs `run`, closes.
 * Any failure prints one line (`error ERR_CODE: message`) and exits 1.
 */
export function adminAction<O extends AdminOptions>(
  run: (admin: AdminClients, options: O, out: Output) => Promise<void>,
): (options: O) => Promise<void> {
  return async (options) => {
    let admin: AdminClients | undefined
    try {
      admin = await connect(options)
      await run(admin, options, makeOutput(options.output ?? 'human'))
      admin.close()
    } catch (err) {
      admin?.close()
      failAndExit(oneLine(err))
    }
  }
}

/** The admin socket, or with `--server-address` the TCP port over mTLS (SVID from the Workload API). */
async function connect(options: AdminOptions): Promise<AdminClients> {
  if (options.serverAddress === undefined)
    return connectAdmin(loadAdminCliConfig({ flags: { socket: options.socket } }).socket)
  if (options.socket !== undefined)
    throw new IdentityError('ERR_REQUEST_INVALID', 'give --socket or --server-address, not both')
  const { endpoint, timeoutMs } = loadWorkloadCliConfig({})
  return connectRemoteAdmin(options.serverAddress, { endpoint, timeoutMs })
}

/** Formats Unix seconds as RFC 3339 (UTC); 0 reads `never`. */
export function formatTime(seconds: number): string {
  return seconds === 0 ? 'never' : new Date(seconds * 1000).toISOString().replace('.000Z', 'Z')
}

/** `label : value` lines with aligned colons, one per value (a label may repeat). */
export function formatFields(rows: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(...rows.map(([label]) => label.length))
  return rows.map(([label, value]) => `${label.padEnd(width)} : ${value}`).join('\n')
}
