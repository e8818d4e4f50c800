DROP TABLE section_registrations;
CREATE TABLE section_registrations (
    section_id TEXT NOT NULL REFERENCES sections (id),
    org_id     TEXT NOT NULL REFERENCES organisations (id),
    user_id    TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (section_id, org_id)
);
DROP TABLE manifests;
DROP TABLE late_attempts;
DROP TABLE log_openings;
DROP TABLE bids;
DROP TABLE submissions;
DROP TABLE section_params;
DROP TABLE log_checkpoints;
DROP TABLE log_leaves;
DROP TABLE log_nodes;
DROP TABLE log_state;
