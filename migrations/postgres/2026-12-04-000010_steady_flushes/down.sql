ALTER TABLE log_state DROP COLUMN flushed_at;
DROP TABLE log_queue;
