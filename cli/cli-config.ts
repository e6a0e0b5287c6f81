import { socketPathKind } from '../common/config/config-fields.js'
import { type ConfigInput, loadConfig, type Schema } from '../common/config/config-source.js'

/** The settings of the admin CLI commands (`tessera entry|token|agent|bundle …`). */
export interface AdminCliSettings {
  /** The server's admin API socket: `--socket`, else `TESSERA_ADMIN_SOCKET`, else the server's default. */
  readonly socket: string
}

/** The admin CLI's validated, deep-frozen configuration. */
export type AdminCliConfig = AdminCliSettings

/** Env vars of the admin CLI: `TESSERA_ADMIN_SOCKET` (and `TESSERA_ADMIN_CONFIG`, a JSON file). */
export const ADMIN_CLI_ENV_PREFIX = 'TESSERA_ADMIN_'

/** Where `tessera server run` puts its admin socket by default (its data dir is `./.tessera/server`). */
export const DEFAULT_ADMIN_SOCKET = './.tessera/server/admin.sock'

const ADMIN_CLI_SCHEMA: Schema<AdminCliSettings> = {
  socket: { kind: socketPathKind(), default: DEFAULT_ADMIN_SOCKET },
}

/**
 * Loads the admin CLI's configuration: flags (`socket`), then `TESSERA_ADMIN_*` env vars, then the
 * default, resolved against `cwd`.
 * @throws ConfigError (ERR_CONFIG_INVALID) with every problem
 */
export function loadAdminCliConfig(input: ConfigInput = {}): AdminCliConfig {
  const { config } = loadConfig({ schema: ADMIN_CLI_SCHEMA, envPrefix: ADMIN_CLI_ENV_PREFIX }, input)
  return config
}
