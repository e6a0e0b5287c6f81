/**
 * Schema version 6: task approvals (DESIGN §11). A BeginTask for a scope that needs a human is a
 * pending request of kind `task`: the task it would begin (`task_json`: task id, SPIFFE ID, scopes,
 * audiences, purpose, parent task, pid), until when its caller waits (`wait_until_ms`), and the key a
 * denial is remembered by (`task_key`: agent, uid, sha256, path, SPIFFE ID and scopes).
 */
export const taskApprovalsSchema = `
ALTER TABLE pending_requests ADD COLUMN kind TEXT NOT NULL DEFAULT 'workload' CHECK (kind IN ('workload', 'task'));
ALTER TABLE pending_requests ADD COLUMN task_json TEXT NOT NULL DEFAULT '';
ALTER TABLE pending_requests ADD COLUMN task_key TEXT NOT NULL DEFAULT '';
ALTER TABLE pending_requests ADD COLUMN wait_until_ms INTEGER;
CREATE INDEX pending_requests_task_key ON pending_requests (task_key, state, denied_until_ms);
`
