-- keyrelay foundation schema (SQLite). Secrets are stored only as vault
-- ciphertexts (BLOB) or SHA-256 hashes; timestamps are RFC 3339 text.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE data_keys (
    id         TEXT PRIMARY KEY,
    master_kid TEXT NOT NULL,
    wrapped    BLOB NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE projects (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL UNIQUE,
    allowed_redirect_urls TEXT NOT NULL,
    webhook_url           TEXT,
    webhook_secret        BLOB NOT NULL,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL
);

CREATE TABLE secret_keys (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    hash       BLOB NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE INDEX secret_keys_project ON secret_keys(project_id);

CREATE TABLE integrations (
    id            TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    provider_name TEXT,
    provider      TEXT,
    client_id     TEXT,
    client_secret BLOB,
    scopes        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    UNIQUE (project_id, key)
);
