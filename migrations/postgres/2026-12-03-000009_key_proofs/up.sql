-- Every key keeps the statement it was registered with and its proof of
-- possession, so that a transcript can carry them and `kaibiao verify`
-- re-check them (PROTOCOL §2, §10). Keys registered before have none.
ALTER TABLE identity_keys ADD COLUMN proof_statement TEXT;
ALTER TABLE identity_keys ADD COLUMN proof TEXT;
