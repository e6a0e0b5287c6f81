/**
 * Schema version 3: re-consent (DESIGN §10). A new pending request names the earlier approval it
 * follows: what changed (`binary`, `user`, `expired`, or empty) and that request's id, sha256 and uid.
 */
export const reConsentSchema = `
ALTER TABLE pending_requests ADD COLUMN change TEXT NOT NULL DEFAULT '';
ALTER TABLE pending_requests ADD COLUMN previous_request_id TEXT NOT NULL DEFAULT '';
ALTER TABLE pending_requests ADD COLUMN previous_sha256 TEXT NOT NULL DEFAULT '';
ALTER TABLE pending_requests ADD COLUMN previous_uid INTEGER;
CREATE INDEX pending_requests_approved_path ON pending_requests (agent_id, exe_path, state, decided_at_ms);
CREATE INDEX pending_requests_approved_hash ON pending_requests (agent_id, sha256, state, decided_at_ms);
`
