-- keyrelay foundation schema (PostgreSQL). Secrets are stored only as vault
-- ciphertexts (BYTEA) or SHA-256 hashes.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE data_keys (
    id         TEXT PRIMARY KEY,
    master_kid TEXT NOT NULL,
    wrapped    BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE projects (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL UNIQUE,
    allowed_redirect_urls TEXT NOT NULL,
    webhook_url           TEXT,
    webhook_secret        BYTEA NOT NULL,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL
);

CREATE TABLE secret_keys (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    hash       BYTEA NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX secret_keys_project ON secret_keys(project_id);

CREATE TABLE integrations (
    id            TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    provider_name TEXT,
    provider      TEXT,
    client_id     TEXT,
    client_secret BYTEA,
    scopes        TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (project_id, key)
);
