/**
 * Schema version 5: revocations (DESIGN §11). One row per (kind, value): an X509-SVID serial, a
 * JWT-SVID `jti`, a task id, or a SPIFFE ID whose credentials issued before `issued_before_ms` are
 * revoked. A row is kept until `keep_until_ms`, when nothing it revokes can still be valid.
 */
export const revocationsSchema = `
CREATE TABLE revocations (
  kind TEXT NOT NULL CHECK (kind IN ('x509-serial', 'jwt-id', 'task', 'spiffe-id')),
  value TEXT NOT NULL,
  issued_before_ms INTEGER NOT NULL,
  revoked_at_ms INTEGER NOT NULL,
  keep_until_ms INTEGER NOT NULL,
  reason TEXT NOT NULL,
  revoked_by TEXT NOT NULL,
  PRIMARY KEY (kind, value)
) WITHOUT ROWID;
CREATE INDEX revocations_keep_until ON revocations (keep_until_ms);
`
