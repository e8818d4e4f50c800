DROP TABLE idempotency_keys;
DROP TABLE confirmations;
DROP TABLE objections;
DROP TABLE incidents;
DROP TABLE bid_openings;
DROP TABLE key_releases;
DROP TABLE signins;
DROP TABLE openings;
