/** What replaces a redacted value, in the process log and the audit log alike. */
export const REDACT_CENSOR = '[REDACTED]'

/**
 * Field names whose values are secrets: private keys (object or PEM), bearer tokens, join tokens,
 * JWTs, JWT-SVIDs and WIT-SVIDs with their keys and proofs, whole SVIDs (they carry their key), passwords and other secrets, HTTP/gRPC
 * authorization and cookie headers. The process logger redacts them through pino's `redact`; the
 * audit log censors them while it builds each record.
 */
export const SECRET_FIELDS = Object.freeze([
  'privateKey',
  'privateKeyPem',
  'key',
  'keyPem',
  'token',
  'joinToken',
  'accessToken',
  'bearerToken',
  'jwt',
  'jwtSvid',
  'svid',
  'password',
  'secret',
  'authorization',
  'cookie',
  // WIT-SVIDs (their private JWK above all) and Workload Proof Tokens, as fields and as HTTP headers
  'keyJwk',
  'wit_svid_key',
  'wit_svid',
  'workload-identity-token',
  'workload-proof-token',
] as const)
