-- Connect sessions, OAuth states and connections. Session tokens, states and
-- browser bindings are stored as SHA-256 hashes; PKCE verifiers and
-- credentials as vault ciphertexts.
CREATE TABLE connect_sessions (
    token_hash        BLOB PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    project_id        TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    integration_id    TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    integration_key   TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    redirect_url      TEXT NOT NULL,
    scopes            TEXT NOT NULL,
    connection_config TEXT NOT NULL,
    expires_at        TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    used_at           TEXT
);
CREATE INDEX connect_sessions_expiry ON connect_sessions(expires_at);

CREATE TABLE oauth_states (
    state_hash        BLOB PRIMARY KEY,
    session_id        TEXT NOT NULL,
    binding_hash      BLOB NOT NULL,
    project_id        TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    integration_id    TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    integration_key   TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    redirect_url      TEXT NOT NULL,
    redirect_uri      TEXT NOT NULL,
    scopes            TEXT NOT NULL,
    connection_config TEXT NOT NULL,
    pkce_verifier     BLOB,
    expected_issuer   TEXT,
    expires_at        TEXT NOT NULL,
    created_at        TEXT NOT NULL
);
CREATE INDEX oauth_states_expiry ON oauth_states(expires_at);

CREATE TABLE connections (
    id                TEXT PRIMARY KEY,
    project_id        TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    integration_id    TEXT NOT NULL REFERENCES integrations(id) ON DELETE RESTRICT,
    integration_key   TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    auth_mode         TEXT NOT NULL,
    status            TEXT NOT NULL,
    scopes            TEXT NOT NULL,
    expires_at        TEXT,
    credentials       BLOB NOT NULL,
    connection_config TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    last_refresh_at   TEXT,
    refresh_count     BIGINT NOT NULL DEFAULT 0,
    last_error        TEXT,
    version           BIGINT NOT NULL DEFAULT 1,
    UNIQUE (integration_id, user_id)
);
CREATE INDEX connections_listing ON connections(project_id, created_at, id);
