-- The refresh engine: leases, the schedule, integration problems, the audit
-- trail and the revocation retry queue. Lease and schedule instants are unix
-- milliseconds (BIGINT), so both backends compare them as numbers.

-- A refresh is taken with one conditional UPDATE of lease_owner/lease_until;
-- the owner's write clears it. next_refresh_at is when the scheduler should
-- next refresh the connection (NULL: never); refresh_failures counts the
-- transient failures since the last success, for backoff.
ALTER TABLE connections ADD COLUMN lease_owner TEXT;
ALTER TABLE connections ADD COLUMN lease_until BIGINT;
ALTER TABLE connections ADD COLUMN next_refresh_at BIGINT;
ALTER TABLE connections ADD COLUMN refresh_failures BIGINT NOT NULL DEFAULT 0;
CREATE INDEX connections_due ON connections(next_refresh_at);
-- Every proxy cache miss and every refresh looks a connection up by its
-- names; without this, a project's connections were scanned each time.
CREATE UNIQUE INDEX connections_by_name ON connections(project_id, integration_key, user_id);

-- Set (JSON {code, message, at}) when the provider refuses the app's own
-- credentials (invalid_client); cleared when the integration is updated.
ALTER TABLE integrations ADD COLUMN problem TEXT;

-- The audit trail. No secrets: types, names, reasons and error codes.
CREATE TABLE events (
    id              TEXT PRIMARY KEY,
    project_id      TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    integration_key TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    type            TEXT NOT NULL,
    detail          TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX events_listing ON events(project_id, created_at, id);

-- Revocations at the provider that failed for a reason worth retrying (a
-- 503, a network failure). The tokens are vault ciphertexts and the row is
-- deleted once the provider accepts them or the retries give up.
CREATE TABLE revocations (
    id              TEXT PRIMARY KEY,
    project_id      TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    integration_id  TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    integration_key TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    tokens          BLOB NOT NULL,
    reason          TEXT,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    last_error      TEXT,
    created_at      TEXT NOT NULL
);
CREATE INDEX revocations_due ON revocations(next_attempt_at);
