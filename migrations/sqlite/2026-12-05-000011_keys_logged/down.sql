ALTER TABLE identity_keys DROP COLUMN retired_idx;
ALTER TABLE identity_keys DROP COLUMN registered_idx;
