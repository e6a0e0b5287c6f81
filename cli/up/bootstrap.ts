import { writeFile } from 'node:fs/promises'
import { AgentStateStore } from '../../agent/state/agent-state.js'
import type { CreateJoinTokenResponse__Output } from '../../common/gen/tessera/admin/v1/CreateJoinTokenResponse.js'
import type { GetBundleResponse__Output } from '../../common/gen/tessera/admin/v1/GetBundleResponse.js'
import type { ListEntriesResponse__Output } from '../../common/gen/tessera/admin/v1/ListEntriesResponse.js'
import type { SpiffeBundle } from '../../lib/core/bundle/spiffe-bundle.js'
import { X509Bundle } from '../../lib/core/bundle/x509-bundle.js'
import { IdentityError } from '../../lib/core/errors.js'
import type { TrustDomain } from '../../lib/core/trust-domain.js'
import { type AdminClients, callAdmin } from '../admin-client.js'

/** How long the join token `up` makes is valid: the agent uses it within seconds. */
const JOIN_TOKEN_TTL_SECONDS = 60
/** A persisted agent SVID this close to expiry is not worth reusing: a fresh token is made instead. */
const REUSE_MARGIN_MS = 60_000

/** What `up` needs of a persisted agent state. */
export interface ReusableAgent {
  readonly spiffeId: string
  /** The bundle the agent trusts the server with. */
  readonly bundle: SpiffeBundle
}

/**
 * The agent state persisted in `agentDataDir` when the agent can restart with it (no join token);
 * undefined on a first run or when its SVID has (nearly) expired.
 * @throws ERR_KEY_STORE_CORRUPT (unreadable, or of another trust domain), ERR_KEY_STORE_IO
 */
export async function findReusableAgent(
  agentDataDir: string,
  trustDomain: TrustDomain,
  nowMs: number,
): Promise<ReusableAgent | undefined> {
  const state = await new AgentStateStore(agentDataDir, trustDomain).load()
  const leaf = state?.svid.certificates[0]
  if (state === undefined || leaf === undefined || leaf.notAfterMs < nowMs + REUSE_MARGIN_MS) return undefined
  return { spiffeId: state.svid.id.toString(), bundle: state.bundle }
}

/**
 * Checks that the persisted agent knows this server: their bundles share an authority. They do not
 * when the server's state was removed and the agent's kept; the agent could then never connect.
 * @throws ERR_CONFIG_INVALID naming the directory to remove
 */
export function requireSameServer(agent: ReusableAgent, serverPem: string, agentDataDir: string): void {
  const server = X509Bundle.parsePem(agent.bundle.trustDomain, serverPem)
  if (agent.bundle.x509Authorities.some((cert) => server.hasAuthority(cert))) return
  throw new IdentityError(
    'ERR_CONFIG_INVALID',
    `the agent state in ${agentDataDir} belongs to another server (their bundles share no authority): remove that directory to attest afresh`,
  )
}

/** Writes the server's own bundle (PEM) where the agent's `--trust-bundle` reads it; returns it. */
export async function writeTrustBundle(admin: AdminClients, path: string): Promise<string> {
  const response = await callAdmin<GetBundleResponse__Output>(admin, (o, r) =>
    admin.bundles.GetBundle({}, o, r),
  )
  await writeFile(path, response.pem, { mode: 0o644 })
  return response.pem
}

/** A one-minute join token whose agent also gets the alias `aliasId`. */
export async function createJoinToken(admin: AdminClients, aliasId: string): Promise<string> {
  const request = { ttl: JOIN_TOKEN_TTL_SECONDS, alias_spiffe_id: aliasId }
  const created = await callAdmin<CreateJoinTokenResponse__Output>(admin, (o, r) =>
    admin.joinTokens.CreateJoinToken(request, o, r),
  )
  return created.token
}

/** True when an entry for `spiffeId` under `parentId` exists already (a later run). */
export async function hasEntry(
  admin: AdminClients,
  ids: { readonly spiffeId: string; readonly parentId?: string },
): Promise<boolean> {
  const request = {
    filter: { by_spiffe_id: ids.spiffeId, by_parent_id: ids.parentId ?? '' },
    page_size: 1,
    page_token: '',
  }
  const page = await callAdmin<ListEntriesResponse__Output>(admin, (o, r) =>
    admin.entries.ListEntries(request, o, r),
  )
  return page.entries.length > 0
}
