ALTER TABLE identity_keys DROP COLUMN proof;
ALTER TABLE identity_keys DROP COLUMN proof_statement;
