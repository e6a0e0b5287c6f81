import type { Command } from 'commander'
import { createLogger } from '../../common/log/logger.js'
import { systemClock } from '../../lib/core/clock.js'
import { loadHelperConfig } from '../helper/helper-config.js'
import { startHelper } from '../helper/helper-run.js'
import { failAndExit } from '../output.js'
import { oneLine } from './workload-command.js'

/** `tessera helper`: spiffe-helper's role for software that knows nothing of SPIFFE. */
export function registerHelperCommand(program: Command): void {
  program
    .command('helper')
    .description(
      "keep a workload's SVID, key and bundle files (and a JWT-SVID) current on disk from the Workload API, and run a reload command or signal a process on every rotation",
    )
    .option(
      '--config <file>',
      "JSON config file with spiffe-helper's keys (cert_dir, svid_file_name, renew_signal, …)",
    )
    .option(
      '--socket <address>',
      'Workload API: unix:///path or a socket path (default $SPIFFE_ENDPOINT_SOCKET)',
    )
    .option('--cert-dir <dir>', 'where the files are written (created 0700)')
    .option('--svid-file-name <name>', 'certificate chain, leaf first (default svid.pem)')
    .option('--svid-key-file-name <name>', 'private key, PKCS#8, mode 0600 (default svid_key.pem)')
    .option('--svid-bundle-file-name <name>', "the trust domain's CA bundle (default svid_bundle.pem)")
    .option('--jwt-audience <aud>', 'also keep a JWT-SVID for this audience')
    .option('--jwt-svid-file-name <name>', 'the JWT-SVID file (mode 0600), refreshed at half its lifetime')
    .option(
      '--cmd <path>',
      'run after every rotation (a reload command), or with --renew-signal start it once and signal it',
    )
    .option('--cmd-args <args>', 'its arguments, split at white space')
    .option(
      '--renew-signal <signal>',
      'signal sent on every rotation (SIGHUP, SIGUSR1, …) to --cmd or the --pid-file-name process',
    )
    .option('--pid-file-name <file>', 'a file holding the pid to signal')
    .option('--daemon-mode <bool>', 'false: write the files once and exit (default true)')
    .option('--timeout <duration>', 'how long to wait for the first SVID before failing (default 30s)')
    .action(async (opts: Record<string, unknown>) => {
      try {
        await runHelper(opts)
      } catch (err) {
        failAndExit(oneLine(err))
      }
    })
}

async function runHelper(flags: Record<string, unknown>): Promise<void> {
  const config = loadHelperConfig({ flags, env: process.env, cwd: process.cwd() })
  const log = createLogger({ level: 'info', format: 'json', name: 'helper' })
  const running = await startHelper(config, { log, clock: systemClock })
  if (running === undefined) return
  const stop = () => void running.stop()
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  process.exit(await running.done)
}
