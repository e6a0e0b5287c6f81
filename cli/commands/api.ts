import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Command } from 'commander'
import { IdentityError } from '../../lib/core/errors.js'
import { collect } from '../output.js'
import {
  formatJwt,
  formatWit,
  formatX509Context,
  jwtSvidJson,
  witSvidJson,
  x509ContextJson,
} from './api-format.js'
import { watchX509 } from './api-watch.js'
import { writeX509Files } from './svid-files.js'
import {
  formatRows,
  type WorkloadContext,
  type WorkloadOptions,
  withWorkloadOptions,
  workloadAction,
} from './workload-command.js'

interface FetchX509Options extends WorkloadOptions {
  readonly write?: string
  readonly includeKey?: boolean
}
interface FetchJwtOptions extends WorkloadOptions {
  readonly audience: string[]
  readonly spiffeId?: string
}
interface ValidateJwtOptions extends WorkloadOptions {
  readonly audience: string
  readonly token: string
}

async function fetchX509({ client, out }: WorkloadContext, options: FetchX509Options): Promise<void> {
  const context = await client.fetchX509Context()
  const written = options.write === undefined ? [] : await writeX509Files(resolve(options.write), context)
  const json = {
    ...x509ContextJson(context, { includeKey: options.includeKey === true }),
    ...(options.write === undefined ? {} : { written }),
  }
  out.print(json, () => {
    const text = formatX509Context(context)
    return written.length === 0 ? text : `${text}\n\nWrote ${written.join(', ')}`
  })
}

async function fetchJwt({ client, out }: WorkloadContext, options: FetchJwtOptions): Promise<void> {
  const svids = await client.fetchJwtSvids({
    audience: options.audience,
    ...(options.spiffeId === undefined ? {} : { spiffeId: options.spiffeId }),
  })
  out.print({ svids: svids.map(jwtSvidJson) }, () => formatJwt(svids))
}

interface FetchWitOptions extends WorkloadOptions {
  readonly spiffeId?: string
  readonly includeKey?: boolean
}

async function fetchWit({ client, out }: WorkloadContext, options: FetchWitOptions): Promise<void> {
  const all = await client.fetchWitSvids()
  const svids =
    options.spiffeId === undefined ? all : all.filter((w) => w.svid.id.toString() === options.spiffeId)
  if (svids.length === 0) throw new IdentityError('ERR_NO_IDENTITY', `no WIT-SVID for ${options.spiffeId}`)
  const includeKey = options.includeKey === true
  out.print({ svids: svids.map((w) => witSvidJson(w, { includeKey })) }, () => formatWit(svids))
}

/** `--token -` reads the token from standard input, so it stays out of the process list. */
function readToken(value: string): string {
  const token = (value === '-' ? readFileSync(0, 'utf8') : value).trim()
  if (token === '') throw new IdentityError('ERR_REQUEST_INVALID', 'the token is empty')
  return token
}

async function validateJwt({ client, out }: WorkloadContext, options: ValidateJwtOptions): Promise<void> {
  const result = await client.validateJwtSvid(readToken(options.token), options.audience)
  const value = { spiffe_id: result.id.toString(), claims: result.claims }
  out.print(value, (v) =>
    [
      'SVID is valid.',
      formatRows([['SPIFFE ID', v.spiffe_id]]),
      'Claims:',
      JSON.stringify(v.claims, null, 2),
    ].join('\n'),
  )
}

/** `tessera api fetch x509|jwt|wit`, `tessera api validate jwt`, `tessera api watch`: the Workload API as a workload sees it. */
export function registerApiCommands(program: Command): void {
  const api = program.command('api').description("this process's identity, from the agent's Workload API")
  const fetch = api.command('fetch').description('fetch SVIDs')
  withWorkloadOptions(fetch.command('x509'))
    .description('fetch the X509-SVIDs and bundles (the first SVID is the default)')
    .option(
      '--write <dir>',
      'write svid.pem, svid.key (0600), bundle.pem and federated_bundles/ to this directory',
    )
    .option(
      '--include-key',
      "with --output json: add each SVID's private key (x509_svid_key, PKCS#8 DER in base64)",
    )
    .action(workloadAction(fetchX509))
  withWorkloadOptions(fetch.command('jwt'))
    .description('fetch JWT-SVIDs whose aud holds every audience given (prints the tokens)')
    .requiredOption('--audience <aud>', 'audience (repeatable)', collect)
    .option('--spiffe-id <id>', 'only the token for this SPIFFE ID')
    .action(workloadAction(fetchJwt))
  withWorkloadOptions(fetch.command('wit'))
    .description('fetch WIT-SVIDs (proof-of-possession identity tokens; the first is the default)')
    .option('--spiffe-id <id>', 'only the WIT-SVID for this SPIFFE ID')
    .option('--include-key', "with --output json: add each WIT's private key (wit_svid_key, a private JWK)")
    .action(workloadAction(fetchWit))
  const validate = api.command('validate').description('have the agent validate an SVID')
  withWorkloadOptions(validate.command('jwt'))
    .description('validate a JWT-SVID for an audience; exits non-zero with the reason when it is invalid')
    .requiredOption('--audience <aud>', 'the audience the token must be for')
    .requiredOption('--token <token>', 'the JWT-SVID, or - to read it from standard input')
    .action(workloadAction(validateJwt))
  withWorkloadOptions(api.command('watch'))
    .description('print every X.509 update the agent pushes (rotation, entry changes) until Ctrl-C')
    .action(watchX509)
}
