/**
 * Schema version 7: the server's tasks (DESIGN §11), so that a task outlives a server restart: its
 * renewals and EndTask still work, an ended one stays ended. One row per task id: the entry and
 * SPIFFE ID it was minted for, the agent that asked (only it may renew or end it), the request
 * (`request_json`: audiences, scopes, purpose, ttl), its parent task, delegated subject and approver,
 * its latest expiry, and when and why it ended and whether that end reached the revocations.
 * Rows are pruned once the token has expired.
 */
export const tasksSchema = `
CREATE TABLE tasks (
  task_id TEXT PRIMARY KEY,
  entry_id TEXT NOT NULL,
  spiffe_id TEXT NOT NULL,
  agent_id TEXT NOT NULL,
  request_json TEXT NOT NULL,
  parent_task_id TEXT,
  delegated_subject TEXT,
  approved_by TEXT,
  expires_at_ms INTEGER NOT NULL,
  ended_at_ms INTEGER,
  end_reason TEXT,
  is_revoked INTEGER NOT NULL DEFAULT 0 CHECK (is_revoked IN (0, 1))
);
CREATE INDEX tasks_parent ON tasks (parent_task_id) WHERE parent_task_id IS NOT NULL;
CREATE INDEX tasks_expires ON tasks (expires_at_ms);
`
