-- Remote expert evaluation (远程异地评标): the expert pool, each section's
-- draw and committee, and the experts' signed reviews and scores.
-- The draw's seed is sealed at rest until the result is published; the
-- committee's identities never go into room events.

CREATE TABLE experts (
    id             TEXT PRIMARY KEY,
    centre         TEXT NOT NULL,
    name           TEXT NOT NULL,
    email          TEXT NOT NULL,
    specialties    TEXT NOT NULL,
    employer       TEXT NOT NULL,
    related_orgs   TEXT NOT NULL,
    related_people TEXT NOT NULL,
    available      BOOLEAN NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX experts_centre ON experts (centre);

CREATE TABLE evaluations (
    section_id      TEXT PRIMARY KEY REFERENCES sections (id),
    phase           TEXT NOT NULL CHECK (phase IN ('seating', 'reviewing', 'scoring', 'signing', 'publicity', 'awarded')),
    request_json    TEXT NOT NULL,
    parties_json    TEXT NOT NULL,
    snapshot_json   TEXT NOT NULL,
    snapshot_hash   TEXT NOT NULL,
    seed_commitment TEXT NOT NULL,
    sealed_seed     TEXT NOT NULL,
    draw_json       TEXT NOT NULL,
    k_coefficient   TEXT,
    outcome_json    TEXT,
    report_json     TEXT,
    report_hash     TEXT,
    signing_ends_at BIGINT,
    published_at    BIGINT,
    publicity_ends_at BIGINT,
    paused_since    BIGINT,
    awarded_at      BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

CREATE TABLE seats (
    section_id   TEXT NOT NULL REFERENCES sections (id),
    expert_id    TEXT NOT NULL REFERENCES experts (id),
    specialty    TEXT NOT NULL,
    position     INTEGER NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('standby', 'called', 'confirmed', 'declined', 'recused')),
    token_hash   TEXT,
    expert_key   TEXT,
    pass_json    TEXT,
    called_at    BIGINT,
    responded_at BIGINT,
    PRIMARY KEY (section_id, expert_id)
);
CREATE UNIQUE INDEX seats_token ON seats (token_hash);

CREATE TABLE eval_votes (
    section_id TEXT NOT NULL REFERENCES sections (id),
    expert_id  TEXT NOT NULL REFERENCES experts (id),
    bid        TEXT NOT NULL,
    pass       BOOLEAN NOT NULL,
    reason     TEXT,
    statement  TEXT NOT NULL,
    signature  TEXT NOT NULL,
    at         BIGINT NOT NULL,
    PRIMARY KEY (section_id, expert_id, bid)
);

CREATE TABLE eval_scores (
    section_id TEXT NOT NULL REFERENCES sections (id),
    expert_id  TEXT NOT NULL REFERENCES experts (id),
    bid        TEXT NOT NULL,
    item       TEXT NOT NULL,
    points     BIGINT NOT NULL,
    statement  TEXT NOT NULL,
    signature  TEXT NOT NULL,
    at         BIGINT NOT NULL,
    PRIMARY KEY (section_id, expert_id, bid, item)
);

CREATE TABLE report_signatures (
    section_id TEXT NOT NULL REFERENCES sections (id),
    expert_id  TEXT NOT NULL REFERENCES experts (id),
    agree      BOOLEAN NOT NULL,
    dissent    TEXT,
    deemed     BOOLEAN NOT NULL,
    statement  TEXT,
    signature  TEXT,
    at         BIGINT NOT NULL,
    PRIMARY KEY (section_id, expert_id)
);

CREATE TABLE publicity_objections (
    id          TEXT PRIMARY KEY,
    section_id  TEXT NOT NULL REFERENCES sections (id),
    bidder      TEXT NOT NULL REFERENCES organisations (id),
    raised_by   TEXT NOT NULL REFERENCES users (id),
    text        TEXT NOT NULL,
    raised_at   BIGINT NOT NULL,
    answer_due_at BIGINT NOT NULL,
    answer      TEXT,
    answered_by TEXT REFERENCES users (id),
    answered_at BIGINT
);
CREATE INDEX publicity_objections_section ON publicity_objections (section_id);

CREATE TABLE outlier_flags (
    section_id TEXT NOT NULL REFERENCES sections (id),
    expert_id  TEXT NOT NULL REFERENCES experts (id),
    bid        TEXT NOT NULL,
    total      BIGINT NOT NULL,
    median     BIGINT NOT NULL,
    flagged_at BIGINT NOT NULL,
    reason     TEXT,
    statement  TEXT,
    signature  TEXT,
    confirmed_at BIGINT,
    PRIMARY KEY (section_id, expert_id, bid)
);

CREATE TABLE clarifications (
    id          TEXT PRIMARY KEY,
    section_id  TEXT NOT NULL REFERENCES sections (id),
    expert_id   TEXT NOT NULL REFERENCES experts (id),
    bid         TEXT NOT NULL,
    bidder      TEXT NOT NULL REFERENCES organisations (id),
    question    TEXT NOT NULL,
    statement   TEXT NOT NULL,
    signature   TEXT NOT NULL,
    asked_at    BIGINT NOT NULL,
    due_at      BIGINT NOT NULL,
    answer      TEXT,
    answer_statement TEXT,
    answer_signature TEXT,
    answered_by TEXT REFERENCES users (id),
    answered_at BIGINT
);
CREATE INDEX clarifications_section ON clarifications (section_id);
