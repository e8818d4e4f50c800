-- Each trading centre's registration, signed by the centre itself, is a
-- leaf of the log (#11 item 3, PROTOCOL §14.1): the signed file as the
-- platform took it, and the index and time of its `centre.registered`
-- leaf. A centre whose key changes gets a new row; none is ever rewritten.
CREATE TABLE centre_registrations (
    statement_hash TEXT PRIMARY KEY NOT NULL,
    code           TEXT NOT NULL,
    name           TEXT NOT NULL,
    public_key     TEXT NOT NULL,
    signature      TEXT NOT NULL,
    idx            BIGINT NOT NULL,
    registered_at  BIGINT NOT NULL
);
CREATE INDEX centre_registrations_code ON centre_registrations (code, idx);
