import { type Kind, listKind, pathKind, spiffeIdKind } from '../common/config/config-fields.js'
import type { ConfigInput, Schema } from '../common/config/config-source.js'
import {
  checkGuardedAppSettings,
  GUARDED_APP_SCHEMA,
  type GuardedAppLoaded,
  type GuardedAppSettings,
  loadGuardedAppConfig,
} from '../common/config/guarded-app-config.js'
import type { SpiffeId } from '../lib/core/spiffe-id.js'
import { normalizeAllowedOrigin } from '../lib/guard/host-origin.js'
import { parseUpstream, type UpstreamTarget } from './upstream.js'

/**
 * The settings of `tessera gateway`; each is a file key, a `TESSERA_GATEWAY_*` var and a flag. Those it
 * shares with the broker (listen, audience, allowedHosts, tls, requireProof, upstreamTimeout,
 * throttle*, log*, audit*) are {@link GuardedAppSettings}; `requireProof` at the gateway also takes a
 * TLS client certificate as proof.
 */
export interface GatewaySettings extends GuardedAppSettings {
  /** The tool: `unix:///path/tool.sock` or `http://host:port` (`--upstream`). */
  readonly upstream: UpstreamTarget
  /** JSON policy file (`--policy`); without one every authenticated caller is allowed. */
  readonly policyPath: string | undefined
  /** Origins whose browser pages may call (`--allow-origin`, repeatable); default none. */
  readonly allowedOrigins: readonly string[]
  /** With TLS, the SVID to present, by SPIFFE ID (`--spiffe-id`); default the workload's first (default) SVID. */
  readonly spiffeId: SpiffeId | undefined
}

/** The gateway's validated, deep-frozen configuration. */
export interface GatewayConfig extends GatewaySettings, GuardedAppLoaded {}

export const GATEWAY_ENV_PREFIX = 'TESSERA_GATEWAY_'

const upstreamKind: Kind<UpstreamTarget> = (value) => parseUpstream(typeof value === 'string' ? value : '')
const originKind: Kind<string> = (value) => normalizeAllowedOrigin(typeof value === 'string' ? value : '')

/** Every gateway setting and its default, in one place (with the shared ones). */
const GATEWAY_SCHEMA: Schema<GatewaySettings> = {
  ...GUARDED_APP_SCHEMA,
  upstream: { kind: upstreamKind },
  policyPath: { kind: pathKind(), name: 'policy', isOptional: true },
  allowedOrigins: { kind: listKind(originKind), flag: 'allowOrigin', default: [] },
  spiffeId: { kind: spiffeIdKind(), isOptional: true },
}

function checkGatewaySettings(c: Partial<GatewaySettings>) {
  const { problems, warnings } = checkGuardedAppSettings(c, 'gateway')
  if (c.spiffeId !== undefined && c.tls !== true)
    problems.push('spiffeId: chooses the SVID the gateway presents, which it does only with --tls')
  if (c.policyPath === undefined)
    warnings.push('no policy: every caller with a valid SVID of a trusted trust domain is allowed')
  return { problems, warnings }
}

/**
 * Loads the gateway's configuration: the `--config` JSON file, then `TESSERA_GATEWAY_*` env vars,
 * then flags (commander's keys: `listen`, `upstream`, `audience`, `policy`, `allowOrigin`, `host`,
 * `tls`, …). The Workload API endpoint is `--socket` (flag key `socket`), else
 * `SPIFFE_ENDPOINT_SOCKET`, else the default agent socket.
 * @throws ConfigError (ERR_CONFIG_INVALID) with every problem
 * @example
 * const config = loadGatewayConfig({ flags: { listen: '127.0.0.1:8080', upstream: 'unix:///run/tool.sock', audience: ['tool'] } })
 */
export function loadGatewayConfig(input: ConfigInput = {}): GatewayConfig {
  const definition = { schema: GATEWAY_SCHEMA, envPrefix: GATEWAY_ENV_PREFIX, check: checkGatewaySettings }
  return loadGuardedAppConfig(definition, input)
}
