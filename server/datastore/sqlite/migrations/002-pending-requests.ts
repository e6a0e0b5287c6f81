/**
 * Schema version 2: pending requests (DESIGN §10). One row per (agent, uid, sha256, exe path) and
 * episode: a request approved, denied past its deny time, or gone stale is followed by a new row.
 */
export const pendingRequestsSchema = `
CREATE TABLE pending_requests (
  id TEXT PRIMARY KEY NOT NULL,
  agent_id TEXT NOT NULL,
  uid INTEGER NOT NULL,
  user_name TEXT NOT NULL,
  gid INTEGER NOT NULL,
  exe_path TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  cgroup TEXT NOT NULL,
  parent_exe TEXT NOT NULL,
  first_seen_ms INTEGER NOT NULL,
  last_seen_ms INTEGER NOT NULL,
  count INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied')),
  decided_at_ms INTEGER,
  denied_until_ms INTEGER,
  entry_id TEXT
) WITHOUT ROWID;
CREATE INDEX pending_requests_key ON pending_requests (agent_id, uid, sha256, exe_path, last_seen_ms);
CREATE INDEX pending_requests_last_seen ON pending_requests (last_seen_ms);
`
