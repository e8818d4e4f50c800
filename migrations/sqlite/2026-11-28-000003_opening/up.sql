-- The opening (开标): sign-in, the decryption window, key releases, each
-- bid's decryption, incidents, the announcement, confirmations, objections
-- and the closed record. Secrets that would let anyone read prices before
-- the announcement (released keys, decrypted summaries) are sealed at rest
-- until then.

CREATE TABLE openings (
    section_id        TEXT PRIMARY KEY REFERENCES sections (id),
    signin_open       BOOLEAN NOT NULL,
    window_started_at BIGINT,
    window_ends_at    BIGINT,
    paused_since      BIGINT,
    escrow            BOOLEAN NOT NULL,
    record_json       TEXT,
    record_hash       TEXT,
    announced_at      BIGINT,
    closing_json      TEXT,
    closing_hash      TEXT,
    platform_signature TEXT,
    closed_at         BIGINT,
    countersigned_by  TEXT,
    countersignature  TEXT,
    countersigned_at  BIGINT
);

CREATE TABLE signins (
    id          TEXT PRIMARY KEY,
    section_tag TEXT NOT NULL,
    member_tag  TEXT NOT NULL UNIQUE,
    record      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX signins_section ON signins (section_tag);

CREATE TABLE key_releases (
    section_id    TEXT NOT NULL REFERENCES sections (id),
    custodian     TEXT NOT NULL REFERENCES users (id),
    position      INTEGER NOT NULL,
    sealed_secret TEXT NOT NULL,
    secret_key    TEXT,
    signature     TEXT NOT NULL,
    released_at   BIGINT NOT NULL,
    PRIMARY KEY (section_id, custodian)
);

CREATE TABLE bid_openings (
    envelope_hash TEXT PRIMARY KEY REFERENCES bids (envelope_hash),
    section_id    TEXT NOT NULL REFERENCES sections (id),
    status        TEXT NOT NULL CHECK (status IN ('pending', 'decrypted', 'revoked', 'withdrawn')),
    fault         TEXT CHECK (fault IN ('bidder', 'platform')),
    reason        TEXT,
    via           TEXT,
    sealed_result TEXT,
    summary       TEXT,
    bmk           TEXT,
    decrypted_at  BIGINT
);
CREATE INDEX bid_openings_section ON bid_openings (section_id, status);

CREATE TABLE incidents (
    id               TEXT PRIMARY KEY,
    section_id       TEXT NOT NULL REFERENCES sections (id),
    reason           TEXT NOT NULL,
    bidders          TEXT NOT NULL,
    declared_by      TEXT NOT NULL REFERENCES users (id),
    declared_at      BIGINT NOT NULL,
    countersigned_by TEXT,
    countersignature TEXT,
    countersigned_at BIGINT,
    resolved_at      BIGINT
);
CREATE INDEX incidents_section ON incidents (section_id);

CREATE TABLE objections (
    id          TEXT PRIMARY KEY,
    section_id  TEXT NOT NULL REFERENCES sections (id),
    bidder      TEXT NOT NULL REFERENCES organisations (id),
    raised_by   TEXT NOT NULL REFERENCES users (id),
    text        TEXT NOT NULL,
    raised_at   BIGINT NOT NULL,
    answer      TEXT,
    answered_by TEXT,
    answered_at BIGINT
);
CREATE INDEX objections_section ON objections (section_id);

CREATE TABLE confirmations (
    section_id   TEXT NOT NULL REFERENCES sections (id),
    bidder       TEXT NOT NULL REFERENCES organisations (id),
    record_hash  TEXT NOT NULL,
    signature    TEXT NOT NULL,
    confirmed_by TEXT NOT NULL REFERENCES users (id),
    confirmed_at BIGINT NOT NULL,
    PRIMARY KEY (section_id, bidder)
);

CREATE TABLE idempotency_keys (
    user_id    TEXT NOT NULL,
    key        TEXT NOT NULL,
    route      TEXT NOT NULL,
    status     INTEGER NOT NULL,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, key)
);
