import { type Command, Option } from 'commander'
import { ConfigError } from '../../common/config/config-source.js'
import { loadWorkloadCliConfig, type WorkloadCliConfig } from '../../common/config/workload-endpoint.js'
import { IdentityError } from '../../lib/core/errors.js'
import { WorkloadClient } from '../../lib/workload/workload-client.js'
import { failAndExit } from '../output.js'

/** `--output`: human-readable lines (the default) or JSON. */
export type WorkloadOutputFormat = 'human' | 'json'

/** The options every workload command has. */
export interface WorkloadOptions {
  readonly socket?: string
  readonly timeout?: string
  readonly output?: WorkloadOutputFormat
}

/** Where a workload command writes its result. */
export interface WorkloadOutput {
  readonly format: WorkloadOutputFormat
  /** Prints `value` as JSON, or `human(value)` as lines, to stdout. */
  print<T>(value: T, human: (value: T) => string): void
}

/** What a workload command runs with. */
export interface WorkloadContext {
  readonly client: WorkloadClient
  readonly config: WorkloadCliConfig
  readonly out: WorkloadOutput
}

/** Adds `--socket`, `--timeout` and `--output` to a workload command; returns it. */
export function withWorkloadOptions(command: Command): Command {
  return command
    .option(
      '--socket <address>',
      'Workload API: unix:///path, a socket path or tcp://IP:port (default $SPIFFE_ENDPOINT_SOCKET, else ./.tessera/agent/public/api.sock)',
    )
    .option('--timeout <duration>', 'how long a call may take (default 10s)')
    .addOption(new Option('--output <format>', 'output format (default human)').choices(['human', 'json']))
}

function makeOutput(format: WorkloadOutputFormat): WorkloadOutput {
  return {
    format,
    print(value, human) {
      const text = format === 'json' ? JSON.stringify(value, null, 2) : human(value)
      process.stdout.write(text.endsWith('\n') ? text : `${text}\n`)
    },
  }
}

/** A config error on one line: every problem, separated by `; `. */
export function oneLine(err: unknown): unknown {
  return err instanceof ConfigError ? new IdentityError(err.code, err.problems.join('; ')) : err
}

/** Loads `--socket` / `SPIFFE_ENDPOINT_SOCKET` and `--timeout`. @throws ConfigError */
export function loadWorkloadConfig(options: WorkloadOptions): WorkloadCliConfig {
  return loadWorkloadCliConfig({ flags: { socket: options.socket, timeout: options.timeout } })
}

/**
 * The commander action of a workload command: loads the settings, connects, runs `run`, closes.
 * Any failure prints one line (`error ERR_CODE: message`) and exits 1.
 */
export function workloadAction<O extends WorkloadOptions>(
  run: (ctx: WorkloadContext, options: O) => Promise<void>,
): (options: O) => Promise<void> {
  return async (options) => {
    let client: WorkloadClient | undefined
    try {
      const config = loadWorkloadConfig(options)
      client = WorkloadClient.connect({ endpoint: config.endpoint, timeoutMs: config.timeoutMs })
      await run({ client, config, out: makeOutput(options.output ?? 'human') }, options)
      client.close()
    } catch (err) {
      client?.close()
      failAndExit(oneLine(err))
    }
  }
}

/** Milliseconds since the epoch as RFC 3339 (UTC, whole seconds). */
export function formatTimeMs(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')
}

/** `label : value` lines with aligned colons. */
export function formatRows(rows: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(...rows.map(([label]) => label.length))
  return rows.map(([label, value]) => `${label.padEnd(width)} : ${value}`).join('\n')
}
