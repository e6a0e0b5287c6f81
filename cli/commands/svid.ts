import type { Command } from 'commander'
import type { ListRevocationsResponse__Output } from '../../common/gen/tessera/admin/v1/ListRevocationsResponse.js'
import type { RevokeSvidResponse__Output } from '../../common/gen/tessera/admin/v1/RevokeSvidResponse.js'
import type { Revocation__Output } from '../../common/gen/tessera/workload/v1/Revocation.js'
import { IdentityError } from '../../lib/core/errors.js'
import { type AdminClients, callAdmin } from '../admin-client.js'
import { unixSeconds } from '../output.js'
import {
  type AdminOptions,
  adminAction,
  formatFields,
  formatTime,
  type Output,
  withAdminOptions,
} from './admin-command.js'

type RevokeOptions = AdminOptions & {
  readonly serial?: string
  readonly jti?: string
  readonly spiffeId?: string
  readonly entry?: string
  readonly reason?: string
}

/** `tessera svid revoke|revocations`: revoke SVIDs before they expire (DESIGN §11). */
export function registerSvidCommands(program: Command): void {
  const svid = program.command('svid').description('revoke SVIDs before they expire')
  withAdminOptions(svid.command('revoke'))
    .description(
      "revoke an X509-SVID (--serial), a JWT-SVID (--jti), or everything issued so far to a SPIFFE ID (--spiffe-id) or to an entry's SPIFFE ID (--entry); every agent learns it at once, serves it to verifiers that ask, and replaces its own revoked SVIDs",
    )
    .option('--serial <hex>', 'the X509-SVID with this serial number (hex)')
    .option('--jti <id>', 'the JWT-SVID with this jti')
    .option('--spiffe-id <id>', 'every SVID issued to this SPIFFE ID until now')
    .option('--entry <entry-id>', "every SVID issued to this entry's SPIFFE ID until now")
    .option('--reason <text>', 'why, for the audit log (up to 256 characters)')
    .action(adminAction<RevokeOptions>(revoke))
  withAdminOptions(svid.command('revocations'))
    .description('list the revocations the server keeps (each until what it revokes has expired)')
    .action(adminAction<AdminOptions>(list))
}

function targetOf(options: RevokeOptions) {
  const given = [
    options.serial === undefined ? undefined : { serial: options.serial },
    options.jti === undefined ? undefined : { jti: options.jti },
    options.spiffeId === undefined ? undefined : { spiffe_id: options.spiffeId },
    options.entry === undefined ? undefined : { entry_id: options.entry },
  ].filter((t) => t !== undefined)
  if (given.length !== 1)
    throw new IdentityError(
      'ERR_REQUEST_INVALID',
      'give exactly one of --serial, --jti, --spiffe-id, --entry',
    )
  return given[0]
}

/** A revocation as the CLI prints it: snake_case, times in Unix seconds (`issued_before` only for `spiffe-id`). */
interface RevocationJson {
  readonly kind: string
  readonly value: string
  readonly issued_before?: number
  readonly revoked_at: number
  readonly keep_until: number
  readonly reason: string
  readonly revoked_by?: string
}

function toJson(r: Revocation__Output, revokedBy?: string): RevocationJson {
  return {
    kind: r.kind,
    value: r.value,
    ...(r.kind === 'spiffe-id' && { issued_before: unixSeconds(r.issued_before_ms) }),
    revoked_at: unixSeconds(r.revoked_at_ms),
    keep_until: unixSeconds(r.keep_until_ms),
    reason: r.reason,
    ...(revokedBy !== undefined && { revoked_by: revokedBy }),
  }
}

function describe(r: RevocationJson): ReadonlyArray<readonly [string, string]> {
  return [
    ['Kind', r.kind],
    ['Value', r.value],
    ...(r.issued_before === undefined ? [] : [['Issued before', formatTime(r.issued_before)] as const]),
    ['Revoked at', formatTime(r.revoked_at)],
    ['Kept until', formatTime(r.keep_until)],
    ...(r.reason === '' ? [] : [['Reason', r.reason] as const]),
    ...(r.revoked_by === undefined ? [] : [['Revoked by', r.revoked_by] as const]),
  ]
}

async function revoke(admin: AdminClients, options: RevokeOptions, out: Output): Promise<void> {
  const request = { ...targetOf(options), reason: options.reason ?? '' }
  const answer = await callAdmin<RevokeSvidResponse__Output>(admin, (o, r) =>
    admin.revocations.RevokeSvid(request, o, r),
  )
  if (answer.revocation === null) throw new IdentityError('ERR_INTERNAL', 'the server sent no revocation')
  out.print(toJson(answer.revocation, answer.revoked_by), (r) => `Revoked\n${formatFields(describe(r))}`)
}

async function list(admin: AdminClients, _options: AdminOptions, out: Output): Promise<void> {
  const answer = await callAdmin<ListRevocationsResponse__Output>(admin, (o, r) =>
    admin.revocations.ListRevocations({}, o, r),
  )
  // `{ revocations: […] }`, as `entry show` prints `{ entries }` and `approval list` `{ requests }`.
  out.print({ revocations: answer.revocations.map((r) => toJson(r)) }, ({ revocations: all }) =>
    all.length === 0 ? 'No revocations' : all.map((r) => formatFields(describe(r))).join('\n\n'),
  )
}
