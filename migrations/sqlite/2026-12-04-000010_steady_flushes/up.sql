-- Steady flushes (ADR 9): a completed submission or a withdrawal queues
-- its commitment here, sealed at rest under a random id (so neither the
-- rows' order nor their keys say when or whose), and a flush at a fixed
-- time appends the queue to the log with cover leaves. `flushed_at` is the
-- last flush's time, the compare-and-set that makes each flush run once.
CREATE TABLE log_queue (
    id   TEXT PRIMARY KEY,
    item TEXT NOT NULL
);
ALTER TABLE log_state ADD COLUMN flushed_at BIGINT NOT NULL DEFAULT 0;
