import { integerKind, pathKind } from '../common/config/config-fields.js'
import type { ConfigInput, Schema } from '../common/config/config-source.js'
import {
  checkGuardedAppSettings,
  GUARDED_APP_SCHEMA,
  type GuardedAppLoaded,
  type GuardedAppSettings,
  loadGuardedAppConfig,
} from '../common/config/guarded-app-config.js'

/**
 * The settings of `tessera broker`; each is a file key, a `TESSERA_BROKER_*` var and a flag. Those it
 * shares with the gateway (listen, audience, allowedHosts, tls, requireProof, upstreamTimeout,
 * throttle*, log*, audit*) are {@link GuardedAppSettings}; at the broker, `audience` binds task tokens
 * too, and `tls` accepts client SVIDs on routes.
 */
export interface BrokerSettings extends GuardedAppSettings {
  /** The routes file (`--routes`): routes with their credentials and policies, and the egress allowlist. */
  readonly routesPath: string
  /** The secrets file (`--secrets`): mode 0600/0400, owned by the broker's user. */
  readonly secretsPath: string | undefined
  /** PEM CA certificates upstream TLS is verified with instead of the system's (`--upstream-ca`). */
  readonly upstreamCaPath: string | undefined
  /** The largest upstream answer body passed on (`--max-response-bytes`, default 64 MiB). */
  readonly maxResponseBytes: number
}

/** The broker's validated, deep-frozen configuration. */
export interface BrokerConfig extends BrokerSettings, GuardedAppLoaded {}

export const BROKER_ENV_PREFIX = 'TESSERA_BROKER_'

const BROKER_SCHEMA: Schema<BrokerSettings> = {
  ...GUARDED_APP_SCHEMA,
  routesPath: { kind: pathKind(), name: 'routes' },
  secretsPath: { kind: pathKind(), name: 'secrets', isOptional: true },
  upstreamCaPath: { kind: pathKind(), name: 'upstreamCa', isOptional: true },
  maxResponseBytes: { kind: integerKind({ min: 1, max: 2 ** 40 }), default: 64 * 1024 * 1024 },
}

/**
 * Loads the broker's configuration: the `--config` JSON file, then `TESSERA_BROKER_*` env vars, then
 * flags (`listen`, `routes`, `secrets`, `audience`, `upstreamCa`, …). The Workload API endpoint is
 * `--socket`, else `SPIFFE_ENDPOINT_SOCKET`, else the default agent socket.
 * @throws ConfigError (ERR_CONFIG_INVALID) with every problem
 * @example
 * const config = loadBrokerConfig({ flags: { listen: '127.0.0.1:8081', routes: 'routes.json', audience: ['broker'] } })
 */
export function loadBrokerConfig(input: ConfigInput = {}): BrokerConfig {
  const check = (c: Partial<BrokerSettings>) => checkGuardedAppSettings(c, 'broker')
  return loadGuardedAppConfig({ schema: BROKER_SCHEMA, envPrefix: BROKER_ENV_PREFIX, check }, input)
}
