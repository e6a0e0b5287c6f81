import type { Logger } from 'pino'
import { REDACT_CENSOR } from '../common/log/logger.js'
import type { Route } from './broker-routes.js'

/**
 * The broker's log with every route's credential header redacted wherever a headers object is
 * logged (`authorization` is redacted for every process already): one more guard behind the rule
 * that the broker never logs what it injects.
 */
export function redactingLog(log: Logger, routes: ReadonlyArray<Pick<Route, 'injection'>>): Logger {
  const names = [...new Set(routes.flatMap((r) => (r.injection.kind === 'header' ? [r.injection.name] : [])))]
  const paths = names.flatMap((n) => [`["${n}"]`, `*["${n}"]`, `*.*["${n}"]`])
  return paths.length === 0 ? log : log.child({}, { redact: { paths, censor: REDACT_CENSOR } })
}
