-- A section-complete log (ADR 8): every leaf of a section carries a tag
-- that chains it to the section's previous leaf. The head of each
-- section's chain is kept here, filed under a blind tag and sealed at rest,
-- so that the table does not say which section has how many leaves.
CREATE TABLE log_chains (
    tag  TEXT PRIMARY KEY,
    head TEXT NOT NULL
);
