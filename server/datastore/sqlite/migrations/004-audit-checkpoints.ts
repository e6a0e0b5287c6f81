/**
 * Schema version 4: audit checkpoints (DESIGN §10). The latest signed checkpoint the server holds of
 * each writer's audit log (origin = the writer's SPIFFE ID), so that a local file cut or deleted later
 * shows against it.
 */
export const auditCheckpointsSchema = `
CREATE TABLE audit_checkpoints (
  origin TEXT PRIMARY KEY,
  size INTEGER NOT NULL CHECK (size >= 0),
  root_hash TEXT NOT NULL,
  note TEXT NOT NULL,
  reporter TEXT NOT NULL,
  received_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
`
