import { basename } from 'node:path/posix'
import { IdentityError } from '../../lib/core/errors.js'
import { SpiffeId } from '../../lib/core/spiffe-id.js'
import type { TrustDomain } from '../../lib/core/trust-domain.js'
import type { PendingFacts } from './pending-request.js'

/** The placeholders an approval's `--template` may use, each filled from the request. */
export const TEMPLATE_PLACEHOLDERS = ['trust_domain', 'exe_name', 'uid', 'user', 'sha256_prefix'] as const

/** Longest template accepted. */
const MAX_TEMPLATE_LENGTH = 2048
/** Hex characters of the hash `{sha256_prefix}` gives. */
const SHA256_PREFIX_LENGTH = 12

const invalid = (message: string, cause?: unknown) =>
  new IdentityError('ERR_TEMPLATE_INVALID', message, cause === undefined ? undefined : { cause })

/** A value made fit for one path segment: SPIFFE path characters only (others become `_`), never `.`/`..`. */
function segment(value: string): string {
  const clean = value.replace(/[^A-Za-z0-9._-]/g, '_')
  return clean === '' || clean === '.' || clean === '..' ? '_' : clean
}

/**
 * The SPIFFE ID a template gives for a request: `spiffe://{trust_domain}/agents/{exe_name}` →
 * `spiffe://example.org/agents/claude`. Placeholders ({@link TEMPLATE_PLACEHOLDERS}) fill path
 * segments from the request's facts, cleaned to SPIFFE path characters; `{trust_domain}` is the
 * server's. Pure.
 * @throws ERR_TEMPLATE_INVALID on an unknown placeholder, a stray brace, or a result that is no SPIFFE ID
 */
export function expandIdTemplate(template: string, facts: PendingFacts, trustDomain: TrustDomain): SpiffeId {
  if (template.length === 0 || template.length > MAX_TEMPLATE_LENGTH)
    throw invalid(`a template must be 1 to ${MAX_TEMPLATE_LENGTH} characters`)
  const values: Record<(typeof TEMPLATE_PLACEHOLDERS)[number], string> = {
    trust_domain: trustDomain.name,
    exe_name: segment(basename(facts.exePath.replace(/ \(deleted\)$/, ''))),
    uid: String(facts.uid),
    user: segment(facts.userName === '' ? `uid-${facts.uid}` : facts.userName),
    sha256_prefix: facts.sha256.slice(0, SHA256_PREFIX_LENGTH),
  }
  const expanded = template.replace(/\{([^{}]*)\}/g, (_, name: string) => {
    if (!Object.hasOwn(values, name))
      throw invalid(
        `unknown placeholder {${name}}; known: ${TEMPLATE_PLACEHOLDERS.map((p) => `{${p}}`).join(' ')}`,
      )
    return values[name as keyof typeof values]
  })
  if (/[{}]/.test(expanded)) throw invalid('a template has a stray { or }')
  try {
    return SpiffeId.parse(expanded)
  } catch (err) {
    throw invalid(`the template gives ${JSON.stringify(expanded)}, which is no SPIFFE ID`, err)
  }
}
