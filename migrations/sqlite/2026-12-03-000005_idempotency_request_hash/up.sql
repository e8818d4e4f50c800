-- A repeated Idempotency-Key must carry the same request: the hash of the
-- request as the action read it is kept beside the answer. A key stored
-- before this has no hash, and a repeat of it is refused as a different
-- request (keys are meant for retries within minutes, not across upgrades).
ALTER TABLE idempotency_keys ADD COLUMN request_hash TEXT NOT NULL DEFAULT '';
