import { readFile } from 'node:fs/promises'
import { type Command, Option } from 'commander'
import { CHECKPOINT_EVENT } from '../../lib/audit/audit-chain.js'
import { checkAgainstHeldCheckpoint } from '../../lib/audit/held-checkpoint.js'
import { type VerifiedAuditLog, verifyAuditLog } from '../../lib/audit/verify-audit-log.js'
import type { X509BundleSource } from '../../lib/core/bundle/bundle-source.js'
import { SpiffeBundle } from '../../lib/core/bundle/spiffe-bundle.js'
import { X509Bundle } from '../../lib/core/bundle/x509-bundle.js'
import { IdentityError } from '../../lib/core/errors.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import { TrustDomain } from '../../lib/core/trust-domain.js'
import { WorkloadClient } from '../../lib/workload/workload-client.js'
import { failAndExit } from '../output.js'
import { fetchHeldCheckpoint, registerAuditCheckpoints } from './audit-checkpoints.js'
import {
  type AuditFilter,
  type AuditLine,
  formatAuditLine,
  jsonViewOf,
  matches,
  parseAuditLines,
  parseTimeBound,
  resourceOf,
} from './audit-lines.js'
import { loadWorkloadConfig, oneLine } from './workload-command.js'

type OutputFormat = 'human' | 'json'

interface VerifyOptions {
  readonly bundle?: string
  readonly trustDomain?: string
  readonly live?: boolean
  readonly socket?: string
  readonly timeout?: string
  readonly output?: OutputFormat
  readonly server?: boolean
  readonly adminSocket?: string
  readonly origin?: string
}

interface SearchOptions {
  readonly id?: string
  readonly actor?: string
  readonly resource?: string
  readonly correlationId?: string
  readonly event?: string
  readonly outcome?: string
  readonly since?: string
  readonly until?: string
  readonly lines?: string
  readonly output?: OutputFormat
}

const outputOption = () =>
  new Option('--output <format>', 'output format (default human)').choices(['human', 'json'])

/** `tessera audit verify|tail|search`: check an audit file's hash chain and checkpoints; read it. */
export function registerAuditCommands(program: Command): void {
  const audit = program
    .command('audit')
    .description("check the audit logs' hash chain and signed checkpoints, and read them")
  audit
    .command('verify')
    .description(
      'check each file: every line its seq and the hash of the line before, every checkpoint its tree root and signature; names the first bad line',
    )
    .argument('<file...>', 'audit log files (server, agent, gateway)')
    .option(
      '--bundle <file>',
      'the trust bundle checkpoint signers must chain to: PEM (tessera bundle show) or a SPIFFE bundle document (default: fetched from the Workload API)',
    )
    .option(
      '--trust-domain <td>',
      'the trust domain the bundle is for (default: that of the first checkpoint)',
    )
    .option('--live', 'the writer still runs: lines after the last checkpoint are counted, not refused')
    .option(
      '--socket <address>',
      'Workload API address, when no --bundle is given (default $SPIFFE_ENDPOINT_SOCKET)',
    )
    .option('--timeout <duration>', 'how long the Workload API call may take (default 10s)')
    .option(
      '--server',
      "also check each file against the latest checkpoint the server holds of its writer (admin API): fails with ERR_AUDIT_TRUNCATED when the file is shorter than that checkpoint or its first lines are not the checkpoint's, which the file alone cannot show",
    )
    .option(
      '--admin-socket <path>',
      'with --server: the admin API socket (default $TESSERA_ADMIN_SOCKET, else ./.tessera/server/admin.sock)',
    )
    .option(
      '--origin <spiffe-id>',
      "with --server: the file's writer, when no checkpoint in the file names it (default: the last checkpoint's origin)",
    )
    .addOption(outputOption())
    .action(async (files: string[], options: VerifyOptions) => {
      try {
        process.exitCode = await verifyFiles(files, options)
      } catch (err) {
        failAndExit(oneLine(err))
      }
    })
  registerAuditCheckpoints(audit)
  const withFilters = (command: Command) =>
    command
      .option('--id <spiffe-id>', 'only lines about this SPIFFE ID (the resource, or the actor)')
      .option(
        '--actor <actor>',
        'only lines of this actor: a SPIFFE ID, or unix:uid:<uid>:pid:<pid>, admin:uid:<uid>, remote:<address>',
      )
      .option(
        '--resource <resource>',
        'only lines about this resource: a SPIFFE ID, tool, path, executable, …',
      )
      .option(
        '--correlation-id <id>',
        "only lines of this correlation id: a gateway request's, a Workload API call's, a pending request's",
      )
      .option('--event <event>', 'only this event, e.g. svid.issued, call.denied, audit.checkpoint')
      .addOption(
        new Option('--outcome <outcome>', 'only this outcome').choices(['allowed', 'denied', 'error']),
      )
      .option('--since <time>', 'only lines at or after this ISO time, or this long ago (10m, 2h)')
      .option('--until <time>', 'only lines at or before this ISO time, or this long ago')
      .addOption(outputOption())
  withFilters(audit.command('tail'))
    .description('show the last lines of an audit log that match, oldest first')
    .argument('<file>', 'an audit log file')
    .option('-n, --lines <count>', 'how many lines (default 20)')
    .action(async (file: string, options: SearchOptions) => {
      try {
        await show([file], options, parseCount(options.lines ?? '20'))
      } catch (err) {
        failAndExit(oneLine(err))
      }
    })
  withFilters(audit.command('search'))
    .description('show every line of the audit logs that matches')
    .argument('<file...>', 'audit log files')
    .action(async (files: string[], options: SearchOptions) => {
      try {
        await show(files, options, undefined)
      } catch (err) {
        failAndExit(oneLine(err))
      }
    })
}

function parseCount(input: string): number {
  if (!/^[1-9][0-9]{0,6}$/.test(input))
    throw new IdentityError(
      'ERR_REQUEST_INVALID',
      `--lines must be a whole number from 1, not ${JSON.stringify(input)}`,
    )
  return Number(input)
}

async function readAuditFile(file: string): Promise<Buffer> {
  return readFile(file).catch((err: unknown) => {
    throw new IdentityError('ERR_REQUEST_INVALID', `cannot read ${file}`, { cause: err })
  })
}

/** @throws ERR_REQUEST_INVALID when `value` is empty */
function nonEmpty(value: string, flag: string): string {
  if (value === '') throw new IdentityError('ERR_REQUEST_INVALID', `${flag} must not be empty`)
  return value
}

function filterOf(options: SearchOptions, nowMs: number): AuditFilter {
  if (options.id !== undefined) SpiffeId.parse(options.id)
  return {
    ...(options.id !== undefined && { id: options.id }),
    ...(options.actor !== undefined && { actor: nonEmpty(options.actor, '--actor') }),
    ...(options.resource !== undefined && { resource: nonEmpty(options.resource, '--resource') }),
    ...(options.correlationId !== undefined && {
      correlationId: nonEmpty(options.correlationId, '--correlation-id'),
    }),
    ...(options.event !== undefined && { event: options.event }),
    ...(options.outcome !== undefined && { outcome: options.outcome }),
    ...(options.since !== undefined && { sinceMs: parseTimeBound(options.since, nowMs, '--since') }),
    ...(options.until !== undefined && { untilMs: parseTimeBound(options.until, nowMs, '--until') }),
  }
}

async function show(files: string[], options: SearchOptions, last: number | undefined): Promise<void> {
  const filter = filterOf(options, Date.now())
  const found: AuditLine[] = []
  for (const file of files) {
    const text = (await readAuditFile(file)).toString('utf8')
    found.push(...parseAuditLines(text).filter((l) => matches(l, filter)))
  }
  const shown = last === undefined ? found : found.slice(-last)
  if (options.output === 'json')
    process.stdout.write(`${JSON.stringify({ lines: shown.map(jsonViewOf) }, null, 2)}\n`)
  else for (const line of shown) process.stdout.write(`${formatAuditLine(line)}\n`)
}

/** The trust domain the bundle is for: as given, else that of the first checkpoint of the files. */
function trustDomainOf(options: VerifyOptions, contents: ReadonlyArray<Buffer>): TrustDomain | undefined {
  if (options.trustDomain !== undefined) return TrustDomain.parse(options.trustDomain)
  for (const content of contents) {
    for (const line of parseAuditLines(content.toString('utf8'))) {
      const origin = resourceOf(line)
      if (line['event'] === CHECKPOINT_EVENT && typeof origin === 'string') {
        try {
          return SpiffeId.parse(origin).trustDomain
        } catch {
          return undefined
        }
      }
    }
  }
  return undefined
}

/** A bundle file as a source that answers for `td` only (bundles of trust domains are never pooled). */
async function bundleFromFile(path: string, td: TrustDomain | undefined): Promise<X509BundleSource> {
  const data = (await readAuditFile(path)).toString('utf8')
  if (td === undefined)
    throw new IdentityError('ERR_REQUEST_INVALID', 'no checkpoint names a trust domain: give --trust-domain')
  const bundle = data.trimStart().startsWith('{')
    ? SpiffeBundle.parse(td, data).toX509Bundle()
    : X509Bundle.parsePem(td, data)
  return { getX509BundleForTrustDomain: (asked) => (asked.equals(td) ? bundle : undefined) }
}

async function bundleFromWorkloadApi(options: VerifyOptions): Promise<X509BundleSource> {
  const config = loadWorkloadConfig({ socket: options.socket, timeout: options.timeout })
  const client = WorkloadClient.connect({ endpoint: config.endpoint, timeoutMs: config.timeoutMs })
  try {
    return await client.fetchX509Bundles()
  } finally {
    client.close()
  }
}

interface FileResult {
  readonly file: string
  readonly ok: boolean
  readonly result?: VerifiedAuditLog
  readonly error?: { readonly code: string; readonly message: string }
  /** With --server: the size of the checkpoint the server holds of the file's writer (null: none). */
  readonly server?: { readonly origin: string; readonly size: number } | null
}

/** The writer of a file: `--origin`, else the origin of its last checkpoint line. */
function originOf(content: Buffer, options: VerifyOptions): string | undefined {
  if (options.origin !== undefined) return SpiffeId.parse(options.origin).toString()
  const lines = parseAuditLines(content.toString('utf8'))
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i] as AuditLine
    const origin = resourceOf(line)
    if (line['event'] === CHECKPOINT_EVENT && typeof origin === 'string') return origin
  }
  return undefined
}

/** A file that verified on its own, checked against the checkpoint the server holds of its writer. */
async function checkWithServer(
  result: FileResult,
  content: Buffer,
  options: VerifyOptions,
): Promise<FileResult> {
  if (!result.ok) return result
  const origin = originOf(content, options)
  if (origin === undefined)
    throw new IdentityError(
      'ERR_REQUEST_INVALID',
      `${result.file}: no checkpoint in it names its writer: give --origin`,
    )
  const held = await fetchHeldCheckpoint(origin, options.adminSocket)
  if (held === undefined) return { ...result, server: null }
  const server = { origin, size: held.size }
  try {
    checkAgainstHeldCheckpoint(content, held)
    return { ...result, server }
  } catch (err) {
    if (!(err instanceof IdentityError)) throw err
    const error = { code: err.code, message: `${result.file}: ${err.message}` }
    return { file: result.file, ok: false, error, server }
  }
}

/** Verifies every file; prints one result per file; returns the exit code (1 when any failed). */
async function verifyFiles(files: string[], options: VerifyOptions): Promise<number> {
  const contents = await Promise.all(files.map(readAuditFile))
  const bundles =
    options.bundle !== undefined
      ? await bundleFromFile(options.bundle, trustDomainOf(options, contents))
      : await bundleFromWorkloadApi(options)
  const local: FileResult[] = files.map((file, i) => {
    try {
      const result = verifyAuditLog(contents[i] as Buffer, { bundles, live: options.live === true })
      return { file, ok: true, result }
    } catch (err) {
      if (!(err instanceof IdentityError)) throw err
      return { file, ok: false, error: { code: err.code, message: `${file}: ${err.message}` } }
    }
  })
  const results: FileResult[] = []
  for (const [i, r] of local.entries())
    results.push(options.server === true ? await checkWithServer(r, contents[i] as Buffer, options) : r)
  if (options.output === 'json') process.stdout.write(`${JSON.stringify({ files: results }, null, 2)}\n`)
  for (const r of results) {
    if (r.error !== undefined) {
      process.stderr.write(`error ${r.error.code}: ${r.error.message}\n`)
    } else if (options.output !== 'json' && r.result !== undefined) {
      const { lines, checkpoints, origins, unsigned } = r.result
      const tail = unsigned > 0 ? `; ${unsigned} line(s) after the last checkpoint, not yet signed` : ''
      const held =
        r.server === undefined
          ? ''
          : r.server === null
            ? '; the server holds no checkpoint of its writer'
            : `; holds the ${r.server.size} lines of the server's checkpoint`
      process.stdout.write(
        `${r.file}: ok, ${lines} lines, ${checkpoints} checkpoint(s) signed by ${origins.join(', ') || 'nobody'}${tail}${held}\n`,
      )
    }
  }
  return results.every((r) => r.ok) ? 0 : 1
}
