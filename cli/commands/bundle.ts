import { readFile } from 'node:fs/promises'
import { type Command, Option } from 'commander'
import type { GetBundleResponse__Output } from '../../common/gen/tessera/admin/v1/GetBundleResponse.js'
import type { ListFederatedBundlesResponse__Output } from '../../common/gen/tessera/admin/v1/ListFederatedBundlesResponse.js'
import { IdentityError } from '../../lib/core/errors.js'
import { type AdminClients, callAdmin } from '../admin-client.js'
import { type AdminOptions, adminAction, type Output, withAdminOptions } from './admin-command.js'

type BundleFormat = 'pem' | 'spiffe'
type FormatOptions = AdminOptions & { readonly format?: BundleFormat }
type SetOptions = FormatOptions & { readonly id: string; readonly path: string }

/** A bundle as `--output json` prints it: the chosen format's text beside the trust domain. */
interface BundleView {
  readonly trust_domain: string
  readonly sequence_number: number
  readonly pem?: string
  readonly spiffe_bundle?: string
}

const formatOption = (description: string) =>
  new Option('--format <format>', description).choices(['pem', 'spiffe'])

/** `tessera bundle show|list|set|delete`: the own trust bundle and federated ones. */
export function registerBundleCommands(program: Command): void {
  const bundle = program.command('bundle').description('show the trust bundle; manage federated bundles')
  withAdminOptions(bundle.command('show'))
    .description("show the server's own trust bundle")
    .addOption(formatOption('pem (X.509 authorities, the default) or spiffe (SPIFFE bundle document)'))
    .action(adminAction<FormatOptions>(showBundle))
  withAdminOptions(bundle.command('list'))
    .description('list the federated bundles')
    .addOption(formatOption('pem (the default) or spiffe'))
    .action(adminAction<FormatOptions>(listBundles))
  withAdminOptions(bundle.command('set'))
    .description("create or replace a federated trust domain's bundle")
    .requiredOption('--id <trust-domain>', 'the federated trust domain, e.g. spiffe://other.td')
    .requiredOption('--path <file>', 'the bundle file')
    .addOption(formatOption('spiffe or pem (default: guessed from the file)'))
    .action(adminAction<SetOptions>(setBundle))
  withAdminOptions(bundle.command('delete'))
    .description("delete a federated trust domain's bundle")
    .requiredOption('--id <trust-domain>', 'the federated trust domain')
    .action(adminAction<AdminOptions & { id: string }>(deleteBundle))
}

function toView(response: GetBundleResponse__Output, format: BundleFormat): BundleView {
  const { trust_domain = '', sequence_number = 0 } = response.bundle ?? {}
  const text = format === 'pem' ? { pem: response.pem } : { spiffe_bundle: response.spiffe_bundle }
  return { trust_domain, sequence_number, ...text }
}

function bodyOf(view: BundleView): string {
  return view.pem ?? view.spiffe_bundle ?? ''
}

async function showBundle(admin: AdminClients, options: FormatOptions, out: Output): Promise<void> {
  const response = await callAdmin<GetBundleResponse__Output>(admin, (o, r) =>
    admin.bundles.GetBundle({}, o, r),
  )
  out.print(toView(response, options.format ?? 'pem'), bodyOf)
}

async function listBundles(admin: AdminClients, options: FormatOptions, out: Output): Promise<void> {
  const response = await callAdmin<ListFederatedBundlesResponse__Output>(admin, (o, r) =>
    admin.bundles.ListFederatedBundles({}, o, r),
  )
  const bundles = response.bundles.map((b) => toView(b, options.format ?? 'pem'))
  out.print({ bundles }, ({ bundles: list }) => {
    const count = list.length === 1 ? 'Found 1 federated bundle' : `Found ${list.length} federated bundles`
    const rule = '*'.repeat(40)
    return [count, ...list.map((b) => `${rule}\n* ${b.trust_domain}\n${rule}\n${bodyOf(b).trimEnd()}`)].join(
      '\n\n',
    )
  })
}

async function setBundle(admin: AdminClients, options: SetOptions, out: Output): Promise<void> {
  const data = await readFile(options.path, 'utf8').catch((err: unknown) => {
    throw new IdentityError('ERR_REQUEST_INVALID', `cannot read ${options.path}`, { cause: err })
  })
  const request = { trust_domain: options.id, data, format: options.format ?? '' }
  const response = await callAdmin<GetBundleResponse__Output>(admin, (o, r) =>
    admin.bundles.SetFederatedBundle(request, o, r),
  )
  const view = toView(response, options.format ?? 'spiffe')
  out.print(view, (v) => `Bundle set for trust domain ${v.trust_domain} (sequence ${v.sequence_number})`)
}

async function deleteBundle(admin: AdminClients, options: { id: string }, out: Output): Promise<void> {
  const trustDomain = options.id
  await callAdmin(admin, (o, r) => admin.bundles.DeleteFederatedBundle({ trust_domain: trustDomain }, o, r))
  out.print(
    { trust_domain: trustDomain, deleted: true },
    () => `Bundle deleted for trust domain ${trustDomain}`,
  )
}
