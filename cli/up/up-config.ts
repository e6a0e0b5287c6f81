import { integerKind, pathKind, trustDomainKind } from '../../common/config/config-fields.js'
import { type ConfigInput, loadConfig, type Schema } from '../../common/config/config-source.js'
import type { TrustDomain } from '../../lib/core/trust-domain.js'

/** The settings of `tessera up`; each is a flag and a `TESSERA_UP_*` var. */
export interface UpSettings {
  /** Root of the whole dev stack: `server/`, `agent/`, `bundle.pem` and both logs live in it. */
  readonly dataDir: string
  readonly trustDomain: TrustDomain
  /**
   * The server's agent API port on 127.0.0.1; 0 (the default) picks a free one. `up` starts its own
   * agent, so no fixed port is needed, and a taken one would stop a first run.
   */
  readonly port: number
}

/** `tessera up`'s validated, deep-frozen configuration. */
export type UpConfig = UpSettings

export const UP_ENV_PREFIX = 'TESSERA_UP_'

/** Every `up` setting and its default, in one place. */
const UP_SCHEMA: Schema<UpSettings> = {
  dataDir: { kind: pathKind(), default: './.tessera' },
  trustDomain: { kind: trustDomainKind(), default: 'tessera.local' },
  port: { kind: integerKind({ min: 0, max: 65_535 }), default: 0 },
}

/**
 * Loads `tessera up`'s configuration: flags (`dataDir`, `trustDomain`, `port`), then `TESSERA_UP_*`
 * env vars, then the defaults; the data dir becomes absolute against `cwd`.
 * @throws ConfigError (ERR_CONFIG_INVALID) with every problem
 */
export function loadUpConfig(input: ConfigInput = {}): UpConfig {
  return loadConfig({ schema: UP_SCHEMA, envPrefix: UP_ENV_PREFIX }, input).config
}
