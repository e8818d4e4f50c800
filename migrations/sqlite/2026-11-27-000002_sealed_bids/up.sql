-- Sealed bids and the transparency log.
--
-- Before a section's deadline, who has bid where is confidential (the law
-- keeps even the number of bidders secret): submissions and registrations
-- carry keyed blind indexes instead of names, and their records are
-- encrypted with a key kept outside the database. At the deadline the
-- section's records are opened into `bids`.

CREATE TABLE log_state (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    size BIGINT NOT NULL
);
INSERT INTO log_state (id, size) VALUES (1, 0);

CREATE TABLE log_nodes (
    level INTEGER NOT NULL,
    idx   BIGINT NOT NULL,
    hash  TEXT NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE TABLE log_leaves (
    idx        BIGINT PRIMARY KEY,
    leaf       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    section_id TEXT,
    at         BIGINT NOT NULL
);
CREATE INDEX log_leaves_section ON log_leaves (section_id);

CREATE TABLE log_checkpoints (
    size      BIGINT PRIMARY KEY,
    root      TEXT NOT NULL,
    at        BIGINT NOT NULL,
    signature TEXT NOT NULL
);

-- Every published version of a section's parameters, byte for byte.
CREATE TABLE section_params (
    section_id   TEXT NOT NULL REFERENCES sections (id),
    version      INTEGER NOT NULL,
    params_json  TEXT NOT NULL,
    params_hash  TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    PRIMARY KEY (section_id, version)
);

CREATE TABLE submissions (
    id            TEXT PRIMARY KEY,
    section_tag   TEXT NOT NULL,
    bidder_tag    TEXT NOT NULL,
    owner_tag     TEXT NOT NULL,
    envelope_hash TEXT NOT NULL UNIQUE,
    revision      INTEGER NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('receiving', 'complete', 'superseded', 'withdrawn', 'abandoned')),
    record        TEXT NOT NULL,
    progress      TEXT NOT NULL,
    received_at   BIGINT NOT NULL,
    completed_at  BIGINT,
    UNIQUE (bidder_tag, revision)
);
CREATE INDEX submissions_section ON submissions (section_tag);
CREATE INDEX submissions_owner ON submissions (owner_tag);

CREATE TABLE bids (
    envelope_hash   TEXT PRIMARY KEY,
    section_id      TEXT NOT NULL REFERENCES sections (id),
    bidder          TEXT NOT NULL REFERENCES organisations (id),
    bid_id          TEXT NOT NULL,
    revision        INTEGER NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('accepted', 'superseded', 'withdrawn', 'incomplete')),
    signed_envelope TEXT NOT NULL,
    received_at     BIGINT NOT NULL,
    completed_at    BIGINT,
    receipt         TEXT,
    withdrawal      TEXT
);
CREATE INDEX bids_section ON bids (section_id, status);

CREATE TABLE log_openings (
    leaf_idx   BIGINT PRIMARY KEY,
    section_id TEXT NOT NULL REFERENCES sections (id),
    opening    TEXT NOT NULL
);
CREATE INDEX log_openings_section ON log_openings (section_id);

CREATE TABLE late_attempts (
    id            TEXT PRIMARY KEY,
    section_id    TEXT NOT NULL REFERENCES sections (id),
    bidder        TEXT NOT NULL,
    envelope_hash TEXT NOT NULL,
    stage         TEXT NOT NULL CHECK (stage IN ('envelope', 'part', 'withdrawal')),
    at            BIGINT NOT NULL,
    log_idx       BIGINT NOT NULL
);
CREATE INDEX late_attempts_section ON late_attempts (section_id);

CREATE TABLE manifests (
    section_id TEXT PRIMARY KEY REFERENCES sections (id),
    manifest   TEXT NOT NULL,
    root       TEXT NOT NULL,
    bid_count  INTEGER NOT NULL,
    log_idx    BIGINT NOT NULL,
    sealed_at  BIGINT NOT NULL
);

-- Registrations (获取招标文件) are confidential too: blind them.
DROP TABLE section_registrations;
CREATE TABLE section_registrations (
    id          TEXT PRIMARY KEY,
    section_tag TEXT NOT NULL,
    member_tag  TEXT NOT NULL UNIQUE,
    record      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX section_registrations_section ON section_registrations (section_tag);
