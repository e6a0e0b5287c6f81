import { type HttpFrontProcess, startHttpFrontProcess } from './http-front.js'

/** A `tessera broker` child. */
export type BrokerProcess = HttpFrontProcess

/** Spawns `tessera broker <args>` with `env` only and waits for its `broker ready` line. */
export function startBrokerProcess(
  args: ReadonlyArray<string>,
  env: Readonly<Record<string, string>>,
): Promise<BrokerProcess> {
  return startHttpFrontProcess('broker', args, env)
}
