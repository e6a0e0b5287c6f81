/**
 * Schema version 1. Times are integer ms since the epoch. Entries keep their selectors, DNS names and
 * federated trust domains in child tables; `selectors_hash` (SHA-256 of the normalized selector list)
 * lets a unique index refuse a second entry with the same parent, SPIFFE ID and selector set.
 */
export const initialSchema = `
CREATE TABLE entries (
  id TEXT PRIMARY KEY NOT NULL,
  spiffe_id TEXT NOT NULL,
  parent_id TEXT NOT NULL,
  selectors_hash TEXT NOT NULL,
  selector_count INTEGER NOT NULL,
  federates_count INTEGER NOT NULL,
  x509_svid_ttl_ms INTEGER NOT NULL,
  jwt_svid_ttl_ms INTEGER NOT NULL,
  hint TEXT NOT NULL,
  admin INTEGER NOT NULL,
  expires_at_ms INTEGER,
  revision INTEGER NOT NULL,
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL
);
CREATE UNIQUE INDEX entries_identity ON entries (parent_id, spiffe_id, selectors_hash);
CREATE INDEX entries_spiffe_id ON entries (spiffe_id);
CREATE INDEX entries_expires_at ON entries (expires_at_ms) WHERE expires_at_ms IS NOT NULL;

CREATE TABLE entry_selectors (
  entry_id TEXT NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
  type TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (entry_id, type, value)
) WITHOUT ROWID;
CREATE INDEX entry_selectors_by_value ON entry_selectors (type, value);

CREATE TABLE entry_dns_names (
  entry_id TEXT NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  dns_name TEXT NOT NULL,
  PRIMARY KEY (entry_id, position)
) WITHOUT ROWID;

CREATE TABLE entry_federates_with (
  entry_id TEXT NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
  trust_domain TEXT NOT NULL,
  PRIMARY KEY (entry_id, trust_domain)
) WITHOUT ROWID;
CREATE INDEX entry_federates_with_by_td ON entry_federates_with (trust_domain);

CREATE TABLE join_tokens (
  token_sha256 TEXT PRIMARY KEY NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  alias_id TEXT,
  created_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX join_tokens_expires_at ON join_tokens (expires_at_ms);

CREATE TABLE attested_agents (
  spiffe_id TEXT PRIMARY KEY NOT NULL,
  attestation_type TEXT NOT NULL,
  serial_hex TEXT NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  banned INTEGER NOT NULL,
  selectors_json TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE bundles (
  trust_domain TEXT PRIMARY KEY NOT NULL,
  document TEXT NOT NULL,
  sequence TEXT NOT NULL,
  updated_at_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE key_journal (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  document TEXT NOT NULL,
  updated_at_ms INTEGER NOT NULL
);
`
