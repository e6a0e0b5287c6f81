import { constants } from 'node:os'
import {
  booleanKind,
  durationKind,
  enumKind,
  pathKind,
  stringKind,
} from '../../common/config/config-fields.js'
import {
  type CheckResult,
  type ConfigInput,
  loadConfig,
  type Schema,
} from '../../common/config/config-source.js'
import { ConfigError } from '../../lib/core/config-error.js'

/**
 * The settings of `tessera helper`. The file keys are spiffe-helper's (`cert_dir`,
 * `svid_file_name`, `renew_signal`, …) in a JSON file; each is also a `TESSERA_HELPER_*` variable
 * and a flag (`--cert-dir`, `--svid-file-name`, …).
 */
export interface HelperSettings {
  /** The Workload API (`--socket`, `agent_address`); default `$SPIFFE_ENDPOINT_SOCKET`. */
  readonly agentAddress?: string | undefined
  /** Where the files go; created 0700 when missing. */
  readonly certDir: string
  readonly svidFileName: string
  readonly svidKeyFileName: string
  readonly svidBundleFileName: string
  /** A JWT-SVID for this audience is kept in `jwtSvidFileName` (both or neither). */
  readonly jwtAudience?: string | undefined
  readonly jwtSvidFileName?: string | undefined
  /** Run on every rotation (a reload command), or started once and signalled with `renewSignal`. */
  readonly cmd?: string | undefined
  /** The command's arguments, split at white space. */
  readonly cmdArgs?: string | undefined
  readonly renewSignal?: NodeJS.Signals | undefined
  /** A file holding the pid to send `renewSignal` to (read at every rotation). */
  readonly pidFileName?: string | undefined
  /** false: write the files once and exit. */
  readonly daemonMode: boolean
  /** How long to wait for the first SVID (absent socket, no identity yet) before failing. */
  readonly timeoutMs: number
}

export const HELPER_ENV_PREFIX = 'TESSERA_HELPER_'

/** A file name inside `cert_dir`: no directory part, not `.` or `..`. */
const FILE_NAME = stringKind({
  pattern: /^(?!\.\.?$)[^/\0]{1,255}$/,
  hint: 'a file name without a directory',
})
const SIGNALS = Object.keys(constants.signals).filter(
  (s) => s !== 'SIGKILL' && s !== 'SIGSTOP',
) as NodeJS.Signals[]

const HELPER_SCHEMA: Schema<HelperSettings> = {
  agentAddress: { kind: stringKind(), name: 'agent_address', flag: 'socket', isOptional: true },
  certDir: { kind: pathKind(), name: 'cert_dir', flag: 'certDir' },
  svidFileName: { kind: FILE_NAME, name: 'svid_file_name', flag: 'svidFileName', default: 'svid.pem' },
  svidKeyFileName: {
    kind: FILE_NAME,
    name: 'svid_key_file_name',
    flag: 'svidKeyFileName',
    default: 'svid_key.pem',
  },
  svidBundleFileName: {
    kind: FILE_NAME,
    name: 'svid_bundle_file_name',
    flag: 'svidBundleFileName',
    default: 'svid_bundle.pem',
  },
  jwtAudience: { kind: stringKind(), name: 'jwt_audience', flag: 'jwtAudience', isOptional: true },
  jwtSvidFileName: { kind: FILE_NAME, name: 'jwt_svid_file_name', flag: 'jwtSvidFileName', isOptional: true },
  cmd: { kind: stringKind(), name: 'cmd', isOptional: true },
  cmdArgs: { kind: stringKind(), name: 'cmd_args', flag: 'cmdArgs', isOptional: true },
  renewSignal: { kind: enumKind(SIGNALS), name: 'renew_signal', flag: 'renewSignal', isOptional: true },
  pidFileName: { kind: pathKind(), name: 'pid_file_name', flag: 'pidFileName', isOptional: true },
  daemonMode: { kind: booleanKind(), name: 'daemon_mode', flag: 'daemonMode', default: true },
  timeoutMs: { kind: durationKind(), name: 'timeout', default: '30s' },
}

function checkHelperSettings(c: Partial<HelperSettings>): CheckResult {
  const problems: string[] = []
  if ((c.jwtAudience === undefined) !== (c.jwtSvidFileName === undefined))
    problems.push('jwt_audience and jwt_svid_file_name: give both or neither')
  if (c.cmdArgs !== undefined && c.cmd === undefined) problems.push('cmd_args: needs cmd')
  if (c.pidFileName !== undefined && c.cmd !== undefined)
    problems.push('pid_file_name: give it or cmd, not both')
  if (c.pidFileName !== undefined && c.renewSignal === undefined)
    problems.push('pid_file_name: needs renew_signal, the signal to send')
  if (c.renewSignal !== undefined && c.cmd === undefined && c.pidFileName === undefined)
    problems.push('renew_signal: needs cmd (started once, then signalled) or pid_file_name')
  if (c.daemonMode === false && (c.cmd !== undefined || c.pidFileName !== undefined))
    problems.push('daemon_mode false writes the files once and exits: cmd and pid_file_name need daemon mode')
  const names = [c.svidFileName, c.svidKeyFileName, c.svidBundleFileName, c.jwtSvidFileName].filter(
    (n) => n !== undefined,
  )
  if (new Set(names).size !== names.length) problems.push('the file names must differ from one another')
  return { problems, warnings: [] }
}

/** The helper's validated, frozen configuration; `agentAddress` is always set. */
export type HelperConfig = HelperSettings & { readonly agentAddress: string }

/**
 * Loads the helper's settings: `--config` JSON file (spiffe-helper's keys), `TESSERA_HELPER_*`,
 * flags; the Workload API address falls back to `SPIFFE_ENDPOINT_SOCKET`.
 * @throws ConfigError (ERR_CONFIG_INVALID) with every problem
 */
export function loadHelperConfig(input: ConfigInput): HelperConfig {
  const definition = { schema: HELPER_SCHEMA, envPrefix: HELPER_ENV_PREFIX, check: checkHelperSettings }
  const { config } = loadConfig(definition, input)
  const agentAddress = config.agentAddress ?? input.env?.['SPIFFE_ENDPOINT_SOCKET']
  if (agentAddress === undefined || agentAddress === '')
    throw new ConfigError([
      'agent_address: set --socket, SPIFFE_ENDPOINT_SOCKET or "agent_address" in the config file',
    ])
  return Object.freeze({ ...config, agentAddress })
}
