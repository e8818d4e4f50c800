-- Foundation: identities, keys, projects and sections, the schedule, the outbox,
-- per-section events and the audit trail. Instants are UTC milliseconds (BIGINT).

CREATE TABLE organisations (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('bidder', 'trading_centre', 'agent', 'tenderer', 'regulator', 'notary')),
    name        TEXT NOT NULL,
    credit_code TEXT NOT NULL UNIQUE,
    centre_code TEXT UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id                TEXT PRIMARY KEY,
    org_id            TEXT REFERENCES organisations (id),
    username          TEXT NOT NULL UNIQUE,
    email             TEXT NOT NULL,
    display_name      TEXT NOT NULL,
    role              TEXT NOT NULL CHECK (role IN ('admin', 'host', 'tenderer', 'supervisor', 'custodian', 'expert', 'bidder')),
    password_hash     TEXT NOT NULL,
    email_verified_at BIGINT,
    disabled_at       BIGINT,
    created_at        BIGINT NOT NULL,
    CHECK ((role = 'admin') = (org_id IS NULL))
);
CREATE INDEX users_org ON users (org_id);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE email_verifications (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

CREATE TABLE login_throttle (
    key          TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    failures     INTEGER NOT NULL,
    locked_until BIGINT
);

CREATE TABLE key_challenges (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id),
    purpose       TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    server_secret TEXT,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT
);

CREATE TABLE identity_keys (
    id            TEXT PRIMARY KEY,
    owner_id      TEXT NOT NULL,
    purpose       TEXT NOT NULL CHECK (purpose IN ('bidder_signing', 'bidder_encryption', 'custodian_identity', 'expert_identity', 'supervisor_identity')),
    algorithm     TEXT NOT NULL CHECK (algorithm IN ('ed25519', 'x25519')),
    public_key    TEXT NOT NULL,
    registered_by TEXT NOT NULL REFERENCES users (id),
    created_at    BIGINT NOT NULL,
    retired_at    BIGINT,
    UNIQUE (algorithm, public_key)
);
CREATE UNIQUE INDEX identity_keys_one_active ON identity_keys (owner_id, purpose) WHERE retired_at IS NULL;

CREATE TABLE projects (
    id                 TEXT PRIMARY KEY,
    centre_org_id      TEXT NOT NULL REFERENCES organisations (id),
    tenderer_org_id    TEXT NOT NULL REFERENCES organisations (id),
    agent_org_id       TEXT REFERENCES organisations (id),
    regulator_org_id   TEXT NOT NULL REFERENCES organisations (id),
    code               TEXT NOT NULL,
    name               TEXT NOT NULL,
    category           TEXT NOT NULL CHECK (category IN ('construction', 'procurement', 'land_use', 'mining_rights', 'property_rights')),
    must_tender_by_law BOOLEAN NOT NULL,
    description        TEXT NOT NULL,
    created_by         TEXT NOT NULL REFERENCES users (id),
    created_at         BIGINT NOT NULL,
    UNIQUE (centre_org_id, code)
);

CREATE TABLE sections (
    id                TEXT PRIMARY KEY,
    project_id        TEXT NOT NULL REFERENCES projects (id),
    code              TEXT NOT NULL,
    name              TEXT NOT NULL,
    description       TEXT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('draft', 'published', 'sealed', 'decrypting', 'announced', 'confirming', 'evaluating', 'publicity', 'awarded', 'failed', 'cancelled')),
    deadline_at       BIGINT,
    published_at      BIGINT,
    window_secs       BIGINT NOT NULL,
    decryption_mode   TEXT NOT NULL CHECK (decryption_mode IN ('custodians', 'bidders', 'bidders_with_escrow')),
    threshold         INTEGER NOT NULL,
    min_bidders       INTEGER NOT NULL,
    grace_secs        BIGINT NOT NULL,
    ceiling_price_fen BIGINT,
    evaluation        TEXT,
    summary_fields    TEXT NOT NULL,
    params_version    INTEGER NOT NULL,
    params_json       TEXT,
    params_hash       TEXT,
    cancel_reason     TEXT,
    last_seq          BIGINT NOT NULL,
    created_by        TEXT NOT NULL REFERENCES users (id),
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (project_id, code)
);
CREATE INDEX sections_state ON sections (state, deadline_at);

CREATE TABLE section_custodians (
    section_id TEXT NOT NULL REFERENCES sections (id),
    position   INTEGER NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id),
    PRIMARY KEY (section_id, position),
    UNIQUE (section_id, user_id)
);

CREATE TABLE custodian_section_keys (
    section_id      TEXT NOT NULL REFERENCES sections (id),
    user_id         TEXT NOT NULL REFERENCES users (id),
    public_key      TEXT NOT NULL,
    identity_key_id TEXT NOT NULL REFERENCES identity_keys (id),
    signature       TEXT NOT NULL,
    registered_at   BIGINT NOT NULL,
    PRIMARY KEY (section_id, user_id)
);

CREATE TABLE amendments (
    id           TEXT PRIMARY KEY,
    section_id   TEXT NOT NULL REFERENCES sections (id),
    number       INTEGER NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('clarification', 'modification')),
    title        TEXT NOT NULL,
    body         TEXT NOT NULL,
    old_deadline BIGINT NOT NULL,
    new_deadline BIGINT NOT NULL,
    params_hash  TEXT NOT NULL,
    created_by   TEXT NOT NULL REFERENCES users (id),
    created_at   BIGINT NOT NULL,
    UNIQUE (section_id, number)
);

CREATE TABLE documents (
    id           TEXT PRIMARY KEY,
    section_id   TEXT NOT NULL REFERENCES sections (id),
    amendment_id TEXT REFERENCES amendments (id),
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    uploaded_by  TEXT NOT NULL REFERENCES users (id),
    created_at   BIGINT NOT NULL
);
CREATE INDEX documents_section ON documents (section_id);

CREATE TABLE section_registrations (
    section_id TEXT NOT NULL REFERENCES sections (id),
    org_id     TEXT NOT NULL REFERENCES organisations (id),
    user_id    TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (section_id, org_id)
);

CREATE TABLE events (
    section_id TEXT NOT NULL REFERENCES sections (id),
    seq        BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    payload    TEXT NOT NULL,
    actor_id   TEXT,
    at         BIGINT NOT NULL,
    PRIMARY KEY (section_id, seq)
);

CREATE TABLE audit_log (
    id         TEXT PRIMARY KEY,
    at         BIGINT NOT NULL,
    actor_id   TEXT,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    request_id TEXT,
    detail     TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE jobs (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    section_id  TEXT NOT NULL REFERENCES sections (id),
    due_at      BIGINT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'done', 'cancelled')),
    attempts    INTEGER NOT NULL,
    last_error  TEXT,
    lease_until BIGINT,
    leased_by   TEXT,
    done_at     BIGINT,
    done_by     TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX jobs_due ON jobs (state, due_at);
CREATE UNIQUE INDEX jobs_one_pending ON jobs (section_id, kind) WHERE state = 'pending';

CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    to_addr         TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'dead')),
    attempts        INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    last_error      TEXT,
    sent_at         BIGINT
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
