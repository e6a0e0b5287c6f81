import type { Logger } from 'pino'
import type { Clock } from '../../lib/core/clock.js'
import { IdentityError } from '../../lib/core/errors.js'
import { JwtSource } from '../../lib/workload/jwt-source.js'
import type { X509Context } from '../../lib/workload/responses.js'
import { X509Source } from '../../lib/workload/x509-source.js'
import type { HelperConfig } from './helper-config.js'
import { writeJwtFile, writeX509Files } from './helper-files.js'
import { createReloadNotifier, type ReloadNotifier } from './reload-notifier.js'

/** Shortest wait before a JWT-SVID is fetched again (and after a failed fetch). */
const MIN_JWT_REFRESH_MS = 1000

/** What the helper needs besides its settings. */
export interface HelperDeps {
  readonly log: Logger
  readonly clock: Clock
}

/** A running helper (daemon mode). */
export interface RunningHelper {
  /** Resolves with the exit code when the helper is done (a managed `cmd` exited). */
  readonly done: Promise<number>
  stop(): Promise<void>
}

/**
 * Fetches the workload's X509-SVID (and a JWT-SVID when asked) from the Workload API, writes the
 * files, and tells the software using them. In daemon mode it keeps them current: every X.509
 * update from the agent (rotation, bundle change) rewrites the files and notifies; the JWT-SVID is
 * fetched again at half its lifetime. Without daemon mode it writes once and returns `undefined`.
 * @throws ERR_WORKLOAD_API_UNAVAILABLE when no first SVID came within `timeout` (absent socket, no
 *   identity: the message says which failure was last); ERR_REQUEST_INVALID when `cmd` cannot start
 */
export async function startHelper(
  config: HelperConfig,
  deps: HelperDeps,
): Promise<RunningHelper | undefined> {
  const { log } = deps
  const endpoint = config.agentAddress
  const x509 = await X509Source.create({ endpoint, timeoutMs: config.timeoutMs })
  let jwt: JwtSource | undefined
  try {
    jwt =
      config.jwtAudience === undefined
        ? undefined
        : await JwtSource.create({ endpoint, timeoutMs: config.timeoutMs })
    await writeX509(config, x509.getX509Context(), log)
    const nextJwtMs = jwt === undefined ? undefined : await refreshJwt(config, jwt, deps)
    if (!config.daemonMode) {
      x509.close()
      jwt?.close()
      return undefined
    }
    const notifier = createReloadNotifier(config, log)
    await notifier.notify()
    return follow(config, { x509, jwt, nextJwtMs, notifier }, deps)
  } catch (err) {
    x509.close()
    jwt?.close()
    throw err
  }
}

async function writeX509(config: HelperConfig, context: X509Context, log: Logger): Promise<void> {
  const written = await writeX509Files(config, context)
  log.info(
    { spiffeId: written.id, certDir: config.certDir, expiresAt: new Date(written.expiresAtMs).toISOString() },
    'The SVID files were written.',
  )
}

/** Fetches and writes the JWT-SVID; returns how long until it should be fetched again. */
async function refreshJwt(config: HelperConfig, jwt: JwtSource, deps: HelperDeps): Promise<number> {
  const svid = await jwt.fetchJwtSvid({ audience: config.jwtAudience ?? '' })
  await writeJwtFile(config.certDir, config.jwtSvidFileName ?? '', svid.token)
  const nowMs = deps.clock.nowMs()
  deps.log.info(
    { spiffeId: svid.id.toString(), expiresAt: new Date(svid.expiresAtMs).toISOString() },
    'The JWT-SVID file was written.',
  )
  return Math.max(MIN_JWT_REFRESH_MS, Math.floor((svid.expiresAtMs - nowMs) / 2))
}

function follow(
  config: HelperConfig,
  sources: {
    x509: X509Source
    jwt: JwtSource | undefined
    nextJwtMs: number | undefined
    notifier: ReloadNotifier
  },
  deps: HelperDeps,
): RunningHelper {
  const { log } = deps
  const notifier = sources.notifier
  let chain: Promise<void> = Promise.resolve()
  // A failure after the start (a reload command gone, a full disk) ends the helper with exit code 1.
  let stopped = false
  let resolveDone: (code: number) => void = () => {}
  const done = new Promise<number>((resolve) => {
    resolveDone = resolve
  })
  const fail = (err: unknown) => {
    log.error(
      { err, code: err instanceof IdentityError ? err.code : 'ERR_INTERNAL' },
      'The helper cannot go on.',
    )
    resolveDone(1)
  }
  const unsubscribe = sources.x509.onUpdate((context) => {
    chain = chain
      .then(async () => {
        if (stopped) return
        await writeX509(config, context, log)
        await notifier.notify()
      })
      .catch(fail)
  })
  let timer: NodeJS.Timeout | undefined
  const scheduleJwt = (delayMs: number) => {
    const jwt = sources.jwt
    if (jwt === undefined || stopped) return
    timer = setTimeout(() => {
      refreshJwt(config, jwt, deps).then(scheduleJwt, (err: unknown) => {
        log.warn({ err }, 'Fetching the JWT-SVID failed; trying again.')
        scheduleJwt(MIN_JWT_REFRESH_MS)
      })
    }, delayMs)
  }
  if (sources.nextJwtMs !== undefined) scheduleJwt(sources.nextJwtMs)
  void notifier.exited.then((code) => resolveDone(stopped ? 0 : code))
  return {
    done,
    async stop() {
      stopped = true
      unsubscribe()
      clearTimeout(timer)
      sources.x509.close()
      sources.jwt?.close()
      await chain
      await notifier.stop()
      resolveDone(0)
    },
  }
}
