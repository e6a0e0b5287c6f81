import {
  type ClientRequest,
  request as httpRequest,
  type IncomingMessage,
  type RequestOptions,
} from 'node:http'
import { request as httpsRequest } from 'node:https'
import { type Clock, systemClock } from '../core/clock.js'
import { signWpt, WIT_HEADER, WPT_HEADER } from '../core/wit/wpt.js'
import type { WorkloadWitSvid } from './wit-responses.js'

/** Where a proof's WIT and key come from: a `WitSource`, or anything that gives the current WIT-SVID. */
export interface WitSvidProvider {
  getWitSvid(): WorkloadWitSvid
}

/** Options of {@link proofFetch} and {@link proofHeaders}. */
export interface ProofOptions {
  /** A transaction/task token sent with the request (the caller sets its header): bound as `tth`. */
  readonly taskToken?: string | (() => string | undefined)
  /** WPT lifetime; default 30 s. */
  readonly ttlMs?: number
  readonly clock?: Clock
}

/**
 * The two headers that prove this workload holds its WIT's key for one request:
 * `Workload-Identity-Token` (the WIT) and `Workload-Proof-Token` (a fresh WPT whose `aud` is `url`'s
 * target URI, `htm` the method, `wth` the WIT's hash and, when a task token is given, `tth` its hash).
 * A WPT is good for that one request: verifiers remember its `jti`.
 * @throws ERR_NO_IDENTITY, ERR_WORKLOAD_API_UNAVAILABLE (from the provider), ERR_REQUEST_INVALID (URL)
 */
export async function proofHeaders(
  wits: WitSvidProvider,
  url: string | URL,
  method: string,
  options: ProofOptions = {},
): Promise<Record<string, string>> {
  const { svid, key } = wits.getWitSvid()
  const task = typeof options.taskToken === 'function' ? options.taskToken() : options.taskToken
  const wpt = await signWpt({
    wit: svid.token,
    key,
    url,
    method,
    nowMs: (options.clock ?? systemClock).nowMs(),
    ...(options.ttlMs !== undefined && { ttlMs: options.ttlMs }),
    ...(task !== undefined && { taskToken: task }),
  })
  return { [WIT_HEADER]: svid.token, [WPT_HEADER]: wpt }
}

/**
 * A `fetch` that adds a WIT and a fresh Workload Proof Token to every request it sends.
 * @example
 * const fetchWithProof = proofFetch(await WitSource.create())
 * const res = await fetchWithProof('http://127.0.0.1:8080/mcp', { method: 'POST', body: '{}' })
 */
export function proofFetch(
  wits: WitSvidProvider,
  options: ProofOptions & { readonly fetch?: typeof fetch } = {},
): typeof fetch {
  const base = options.fetch ?? fetch
  return async (input, init) => {
    const req = new Request(input, init)
    const headers = new Headers(req.headers)
    for (const [name, value] of Object.entries(await proofHeaders(wits, req.url, req.method, options)))
      headers.set(name, value)
    return base(new Request(req, { headers }))
  }
}

/**
 * `http.request`/`https.request` for `url` with a WIT and a fresh Workload Proof Token added; end the
 * returned request as usual.
 * @example
 * const req = await proofRequest(wits, 'http://127.0.0.1:8080/mcp', { method: 'POST' }, (res) => res.resume())
 * req.end(body)
 */
export async function proofRequest(
  wits: WitSvidProvider,
  url: string | URL,
  requestOptions: RequestOptions = {},
  onResponse?: (res: IncomingMessage) => void,
  options: ProofOptions = {},
): Promise<ClientRequest> {
  const target = new URL(url)
  const method = requestOptions.method ?? 'GET'
  const proof = await proofHeaders(wits, target, method, options)
  const headers = { ...(requestOptions.headers as Record<string, string> | undefined), ...proof }
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest
  return send(target, { ...requestOptions, method, headers }, onResponse)
}
