-- A draw nobody steers (PROTOCOL §13.2): each contributor's signed
-- commitment to a value, made before the draw is asked for, and the value
-- once revealed (or the time it was found withheld).
CREATE TABLE draw_contributions (
    section_id   TEXT NOT NULL,
    party        TEXT NOT NULL,
    public_key   TEXT NOT NULL,
    statement    TEXT NOT NULL,
    signature    TEXT NOT NULL,
    committed_at BIGINT NOT NULL,
    value        TEXT,
    revealed_at  BIGINT,
    withheld_at  BIGINT,
    PRIMARY KEY (section_id, party)
);

-- The host's request while the contributors reveal: the pool snapshot, the
-- parties and the platform's seed (sealed at rest; its commitment logged)
-- are fixed; the committee is drawn when every value is in or the time to
-- reveal ends.
CREATE TABLE draw_requests (
    section_id      TEXT PRIMARY KEY NOT NULL,
    request_json    TEXT NOT NULL,
    parties_json    TEXT NOT NULL,
    snapshot_json   TEXT NOT NULL,
    seed_commitment TEXT NOT NULL,
    sealed_seed     TEXT NOT NULL,
    contributors    TEXT NOT NULL,
    reveals_due_at  BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);
