-- Every key registration and retirement is a leaf of the log (#11 item 2):
-- the index of each, so that a transcript can carry the leaf with its
-- inclusion proof. Keys registered before have none.
ALTER TABLE identity_keys ADD COLUMN registered_idx BIGINT;
ALTER TABLE identity_keys ADD COLUMN retired_idx BIGINT;
